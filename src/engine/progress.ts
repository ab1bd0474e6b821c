// Per-epoch progress: a cli-progress bar on a terminal; plain lines otherwise (CI, logs), at most
// one a minute inside an epoch plus one when it ends.
import cliProgress from 'cli-progress';
import type { StepInfo } from './loop.js';

export interface ProgressSink {
  startEpoch(label: string, steps: number): void;
  step(info: StepInfo): void;
  /** Ends the epoch's bar; `summary` is printed as a line of its own. */
  endEpoch(summary: string): void;
  /** A message between epochs (not inside a bar). */
  log(message: string): void;
}

function fmt(info: StepInfo) {
  const ips = info.seconds > 0 ? info.images / info.seconds : 0;
  const left = info.steps - info.step;
  const eta = info.step > 0 ? (info.seconds / info.step) * left : 0;
  return { loss: info.loss.toFixed(4), acc: info.acc.toFixed(4), ips: ips.toFixed(1), eta: formatDuration(eta) };
}

export function formatDuration(seconds: number): string {
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  return h > 0 ? `${h}h${String(m).padStart(2, '0')}m` : m > 0 ? `${m}m${String(sec).padStart(2, '0')}s` : `${sec}s`;
}

class BarProgress implements ProgressSink {
  private bar: cliProgress.SingleBar | null = null;

  constructor(private readonly stream: NodeJS.WriteStream) {}

  startEpoch(label: string, steps: number): void {
    this.bar = new cliProgress.SingleBar(
      {
        format: `${label} {bar} {value}/{total} | loss {loss} acc {acc} | {ips} img/s | ETA {etaText}`,
        stream: this.stream,
        hideCursor: true,
        clearOnComplete: true,
        barsize: 24,
      },
      cliProgress.Presets.shades_classic,
    );
    this.bar.start(steps, 0, { loss: '-', acc: '-', ips: '-', etaText: '-' });
  }

  step(info: StepInfo): void {
    const f = fmt(info);
    this.bar?.update(info.step, { loss: f.loss, acc: f.acc, ips: f.ips, etaText: f.eta });
  }

  endEpoch(summary: string): void {
    this.bar?.stop();
    this.bar = null;
    this.stream.write(summary + '\n');
  }

  log(message: string): void {
    this.stream.write(message + '\n');
  }
}

class LineProgress implements ProgressSink {
  private label = '';
  private lastLine = 0;

  constructor(
    private readonly stream: NodeJS.WritableStream,
    private readonly intervalMs: number,
  ) {}

  startEpoch(label: string): void {
    this.label = label;
    this.lastLine = Date.now();
  }

  step(info: StepInfo): void {
    if (Date.now() - this.lastLine < this.intervalMs || info.step === info.steps) return;
    this.lastLine = Date.now();
    const f = fmt(info);
    this.stream.write(`${this.label} step ${info.step}/${info.steps} loss ${f.loss} acc ${f.acc} ${f.ips} img/s ETA ${f.eta}\n`);
  }

  endEpoch(summary: string): void {
    this.stream.write(summary + '\n');
  }

  log(message: string): void {
    this.stream.write(message + '\n');
  }
}

export function makeProgress(stream: NodeJS.WriteStream = process.stdout): ProgressSink {
  return stream.isTTY ? new BarProgress(stream) : new LineProgress(stream, 60_000);
}

/** Discards everything (library use and tests). */
export const silentProgress: ProgressSink = { startEpoch() {}, step() {}, endEpoch() {}, log() {} };
