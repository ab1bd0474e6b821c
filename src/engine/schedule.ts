// The per-epoch step schedule of the learning rate: milestones are epochs after which the lr is
// multiplied by the factor, so epoch e trains with lr · factor^(number of milestones < e) —
// PyTorch's MultiStepLR stepped once per epoch with the same milestones.

export function stepLr(lr: number, epoch: number, milestones: readonly number[], factor: number): number {
  const decays = milestones.filter((m) => epoch > m).length;
  // 12 significant digits drop binary noise (0.1·0.1 = 0.010000000000000002) from history.json;
  // the optimizer applies the lr in float32 anyway.
  return Number((lr * factor ** decays).toPrecision(12));
}

/** `--lr-decay-epochs`: a comma-separated list of epochs ≥ 1, or "none". */
export function parseDecayEpochs(v: string): number[] {
  if (v.trim() === 'none') return [];
  const items = v.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  if (items.length === 0) throw new Error(`--lr-decay-epochs: expected a comma-separated list of epochs or "none", got "${v}"`);
  const epochs = items.map((s) => {
    const e = Number(s);
    if (!/^\d+$/.test(s) || !Number.isSafeInteger(e) || e < 1) throw new Error(`--lr-decay-epochs: "${s}" is not a positive integer`);
    return e;
  });
  if (new Set(epochs).size !== epochs.length) throw new Error(`--lr-decay-epochs: "${v}" lists an epoch twice`);
  return [...epochs].sort((a, b) => a - b);
}

/** `--lr-decay-factor`: a number in (0, 1]. */
export function parseDecayFactor(v: string): number {
  const f = Number(v);
  if (v.trim() === '' || !(f > 0 && f <= 1)) throw new Error(`--lr-decay-factor ${JSON.stringify(v)}: expected a number in (0, 1]`);
  return f;
}
