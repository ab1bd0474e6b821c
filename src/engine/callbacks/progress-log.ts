// The run's lines on the terminal: what is being trained, a bar or periodic lines within each
// epoch (step, loss, accuracy, img/s, ETA), and one summary line per epoch.
import type { Callback } from '../callbacks.js';
import { formatDuration, type ProgressSink } from '../progress.js';

export function progressLog(progress: ProgressSink, describe: string): Callback {
  return {
    onTrainBegin(ctx) {
      const { config } = ctx;
      const decay = config.lrDecayEpochs.length
        ? ` ×${config.lrDecayFactor} after epoch${config.lrDecayEpochs.length > 1 ? 's' : ''} ${config.lrDecayEpochs.join(', ')}`
        : '';
      progress.log(
        `${ctx.label}: ${describe}, ${ctx.run.params.toLocaleString('en-US')} params, batch ${config.batchSize} as ${config.batchSize / config.microBatch} × ${config.microBatch}, ` +
          `${ctx.trainImages} train / ${ctx.testImages} test images, ${config.optimizer} lr ${config.lr}${decay}` +
          (config.weightDecay ? `, weight decay ${config.weightDecay}` : '') +
          (config.normalize ? ', normalised' : '') +
          `, backend ${ctx.run.environment.backend}, protocol ${config.protocol}` +
          (ctx.rows.length > 0 ? `, resuming after epoch ${ctx.rows.length}` : ''),
      );
    },
    onEpochBegin(epoch, ctx) {
      progress.startEpoch(`${ctx.label} epoch ${epoch}/${ctx.config.epochs}`, ctx.stepsPerEpoch);
    },
    onStep(info) {
      progress.step(info);
    },
    onEpochEnd(row, ctx) {
      progress.endEpoch(
        `${ctx.label} epoch ${row.epoch}/${ctx.config.epochs}: loss ${row.loss.toFixed(4)} acc ${row.acc.toFixed(4)} ` +
          `val_loss ${row.val_loss.toFixed(4)} val_acc ${row.val_acc.toFixed(4)} ` +
          (ctx.config.protocol === 'reference' ? `test_loss ${row.test_loss.toFixed(4)} test_acc ${row.test_acc.toFixed(4)} ` : '') +
          `${row.imagesPerSecond.toFixed(1)} img/s ${formatDuration(row.seconds)}`,
      );
    },
  };
}
