import type { Command } from 'commander';
import { cancelExperiment, experimentStatus, findExperiment, type ExperimentStatus } from '../../cluster/coordinator.js';
import { parseQueueUrl } from '../../cluster/connection.js';
import { experimentTables, followExperiment, summarize } from '../queued.js';
import { stopOnInterrupt } from './train.js';

interface QueueFlags {
  queue?: string;
  experiment?: string;
}

function required(flags: QueueFlags, experiment: boolean): { url: string; experiment: string | undefined } {
  if (flags.queue === undefined) throw new Error('--queue is required, e.g. --queue redis://localhost:6379');
  if (experiment && flags.experiment === undefined) throw new Error('--experiment ID is required (selab queue status lists them)');
  return { url: flags.queue, experiment: flags.experiment };
}

function statusText(list: ExperimentStatus[], detailed: boolean): string {
  if (list.length === 0) return 'no experiments on this queue\n';
  const lines: string[] = [];
  for (const s of list) {
    const counts = Object.entries(s.counts).map(([state, n]) => `${n} ${state}`).join(', ') || 'no jobs';
    lines.push(`${s.record.id}  ${s.record.command}${s.record.name ? ` ${s.record.name}` : ''}  ${s.record.jobs.length} job${s.record.jobs.length === 1 ? '' : 's'}: ${counts}${s.record.skipped.length ? `; ${s.record.skipped.length} already completed before` : ''}  out ${s.record.out}`);
    if (!detailed) continue;
    for (const j of s.jobs) {
      const p = j.progress;
      const where = p && p.epoch !== undefined ? ` epoch ${p.epoch}/${p.epochs}${p.step !== undefined ? ` step ${p.step}/${p.steps}` : ''}${p.val_acc !== undefined ? ` val_acc ${p.val_acc.toFixed(4)}` : ''}` : '';
      lines.push(`  ${j.run}  ${j.state}${j.attemptsMade ? `, ${j.attemptsMade} attempt${j.attemptsMade === 1 ? '' : 's'} made` : ''}${j.worker ? `, worker ${j.worker}` : ''}${where}${j.error ? `: ${j.error}` : ''}`);
    }
  }
  return lines.join('\n') + '\n';
}

export function register(program: Command): void {
  const queue = program.command('queue').description('Experiments queued with `selab run|sweep --queue`: their jobs\' states, waiting for them, cancelling them');
  queue
    .command('status')
    .description('Each experiment on the queue with its jobs\' states (with --experiment: every job, its worker and progress)')
    .option('--queue <url>', '(required) redis://[user:pass@]host:port[/db] or rediss://')
    .option('--experiment <id>', 'one experiment, job by job')
    .action(async (opts: QueueFlags) => {
      try {
        const { url, experiment } = required(opts, false);
        process.stdout.write(statusText(await experimentStatus(parseQueueUrl(url), experiment), experiment !== undefined));
      } catch (e) {
        console.error(`selab queue status: ${(e as Error).message}`);
        process.exitCode = 1;
      }
    });
  queue
    .command('wait')
    .description("Follow an experiment's jobs until each has ended, then print its table (when its --out is visible here); exit status 1 if any failed")
    .option('--queue <url>', '(required) redis://[user:pass@]host:port[/db] or rediss://')
    .option('--experiment <id>', '(required) the experiment')
    .action(async (opts: QueueFlags) => {
      const stop = stopOnInterrupt();
      try {
        const { url, experiment } = required(opts, true);
        const target = parseQueueUrl(url);
        const record = await findExperiment(target, experiment!);
        const result = await followExperiment(target, record, stop.signal);
        if (result.interrupted) return;
        const s = summarize(result);
        console.error(`experiment ${record.id}: ${s.trained} trained, ${s.alreadyCompleted + record.skipped.length} already completed, ${s.failed} failed or cancelled`);
        const tables = await experimentTables(record);
        if (tables !== null) console.log(`\n${tables}`);
        process.exitCode = s.failed ? 1 : 0;
      } catch (e) {
        console.error(`selab queue wait: ${(e as Error).message}`);
        process.exitCode = 1;
      } finally {
        stop.dispose();
      }
    });
  queue
    .command('cancel')
    .description('Cancel an experiment: its queued jobs are removed, its jobs in progress stop after their current step (the runs are marked stopped; --resume continues them)')
    .option('--queue <url>', '(required) redis://[user:pass@]host:port[/db] or rediss://')
    .option('--experiment <id>', '(required) the experiment')
    .action(async (opts: QueueFlags) => {
      try {
        const { url, experiment } = required(opts, true);
        const r = await cancelExperiment(parseQueueUrl(url), experiment!);
        console.log(`experiment ${experiment}: ${r.removed} queued job${r.removed === 1 ? '' : 's'} removed, ${r.stopping} in progress stopping after the current step, ${r.finished} already ended`);
      } catch (e) {
        console.error(`selab queue cancel: ${(e as Error).message}`);
        process.exitCode = 1;
      }
    });
}
