// The reference experiment's two tables (conditions; results with gains over each case's
// baseline), computed from run files. Pure data: `selab table` and `selab report` format it.
import { getOptimizerPreset } from '../engine/optimizers.js';
import type { Protocol, Validation } from '../runs/config.js';
import type { RunFile, RunStatus } from '../runs/files.js';
import type { LoadedRun } from './load-runs.js';

/** What the tables need to know about a reference case (src/models/cases.ts has the seven). */
export interface CaseInfo {
  id: number;
  name: string;
  model: string;
  additions: readonly string[];
  se: boolean;
  training: string;
  /** An optimizer preset id of src/train/optimizers.ts. */
  optimizer: string;
  inputShape: readonly number[];
  expectedParams: number;
  /** The case this one's gain is measured against; absent for a baseline. */
  baselineCase?: number;
  /** The reference experiment's published test accuracy, in percent. */
  referenceAccuracy: number;
}

export interface ConditionRow {
  case: number;
  name: string;
  model: string;
  additions: readonly string[];
  se: boolean;
  training: string;
  /** e.g. "adam, lr 0.001": the run's own when the case has run, else the case's preset. */
  optimizer: string;
  inputShape: readonly number[];
  /** From the run file when the case has run, else the case's expected count. */
  params: number;
  trainableParams: number | null;
  macs: number | null;
  /** The run's protocol; null until the case has run. */
  protocol: Protocol | null;
}

export type CaseStatus = RunStatus | 'missing';

export interface ResultRow {
  case: number;
  name: string;
  baselineCase: number | null;
  status: CaseStatus;
  runId: string | null;
  epochsCompleted: number;
  epochsPlanned: number | null;
  /** How the run trained and which validation its accuracies are; null until the case has run. */
  protocol: Protocol | null;
  validation: Validation | null;
  /**
   * Accuracy as a fraction at the last completed epoch, on the run's validation: the reference's
   * subset (val_acc) under --validation reference, the test split (test_acc) under full; null
   * until an epoch has completed.
   */
  finalAcc: number | null;
  /** The whole test split's accuracy at the last completed epoch (equal to finalAcc under --validation full). */
  finalTestAcc: number | null;
  finalEpoch: number | null;
  /** Percentage points over the baseline's final accuracy; null when either is unknown or they are not comparable (gainNote). */
  finalGain: number | null;
  bestAcc: number | null;
  bestEpoch: number | null;
  bestGain: number | null;
  /** Why there is no gain although both runs have numbers: they ran under different protocols or validations. */
  gainNote: string | null;
  /** Published, in percent. */
  referenceAcc: number;
  /** Published gain over the baseline, in percentage points; null for a baseline. */
  referenceGain: number | null;
}

export interface Tables {
  conditions: ConditionRow[];
  results: ResultRow[];
}

/**
 * The run that stands for each case: runs outside sweeps whose `case` is set; when a case has
 * several, the one in `case_N/` wins, then the most recently started.
 */
export function caseRuns(runs: readonly LoadedRun[]): Map<number, LoadedRun> {
  const byCase = new Map<number, LoadedRun>();
  for (const r of runs) {
    if (r.run.case === null || r.run.sweep) continue;
    const prev = byCase.get(r.run.case);
    if (!prev || rank(r.run) > rank(prev.run)) byCase.set(r.run.case, r);
  }
  return byCase;
}

function rank(run: RunFile): number {
  return (run.id === `case_${run.case}` ? 1e15 : 0) + Date.parse(run.startedAt);
}

/** "1e-5" rather than "0.00001": learning rates are read as powers of ten. */
export function formatLr(lr: number): string {
  return lr < 1e-3 ? lr.toExponential() : String(lr);
}

function describeOptimizer(name: string | null, lr: number | null, presetId: string): string {
  if (name !== null && lr !== null) return `${name}, lr ${formatLr(lr)}`;
  const preset = getOptimizerPreset(presetId);
  return `${preset.name}, lr ${formatLr(preset.lr)}`;
}

const pp = (a: number, b: number): number => (a - b) * 100;

export function buildTables(runs: readonly LoadedRun[], cases: readonly CaseInfo[]): Tables {
  const byCase = caseRuns(runs);
  const sorted = [...cases].sort((a, b) => a.id - b.id);
  const referenceById = new Map(sorted.map((c) => [c.id, c.referenceAccuracy]));

  const conditions = sorted.map((c): ConditionRow => {
    const run = byCase.get(c.id)?.run;
    return {
      case: c.id,
      name: c.name,
      model: c.model,
      additions: c.additions,
      se: c.se,
      training: c.training,
      optimizer: describeOptimizer(run?.config.optimizer ?? null, run?.config.lr ?? null, c.optimizer),
      inputShape: run?.config.inputShape ?? c.inputShape,
      params: run?.params ?? c.expectedParams,
      trainableParams: run?.trainableParams ?? null,
      macs: run?.macs ?? null,
      protocol: run?.config.protocol ?? null,
    };
  });

  const partial = sorted.map((c): Omit<ResultRow, 'finalGain' | 'bestGain' | 'referenceGain' | 'gainNote'> => {
    const run = byCase.get(c.id)?.run;
    const onTest = run?.config.validation !== 'reference';
    return {
      case: c.id,
      name: c.name,
      baselineCase: c.baselineCase ?? null,
      status: run?.status ?? 'missing',
      runId: run?.id ?? null,
      epochsCompleted: run?.epochsCompleted ?? 0,
      epochsPlanned: run?.config.epochs ?? null,
      protocol: run?.config.protocol ?? null,
      validation: run?.config.validation ?? null,
      finalAcc: (onTest ? run?.final?.test_acc : run?.final?.val_acc) ?? null,
      finalTestAcc: run?.final?.test_acc ?? null,
      finalEpoch: run?.final?.epoch ?? null,
      bestAcc: (onTest ? run?.best?.test_acc : run?.best?.val_acc) ?? null,
      bestEpoch: run?.best?.epoch ?? null,
      referenceAcc: c.referenceAccuracy,
    };
  });
  const partialById = new Map(partial.map((r) => [r.case, r]));

  const results = partial.map((r): ResultRow => {
    const found = r.baselineCase === null ? undefined : partialById.get(r.baselineCase);
    const baseRef = r.baselineCase === null ? undefined : referenceById.get(r.baselineCase);
    // Gains only between runs trained and validated alike: side by side, not subtracted, otherwise.
    const gainNote =
      found && found.protocol !== null && r.protocol !== null && (found.protocol !== r.protocol || found.validation !== r.validation)
        ? `not comparable: case ${r.case} ran under --protocol ${r.protocol} (validation ${r.validation}), case ${found.case} under ${found.protocol} (validation ${found.validation})`
        : null;
    const base = gainNote ? undefined : found;
    return {
      ...r,
      finalGain: r.finalAcc !== null && base?.finalAcc != null ? pp(r.finalAcc, base.finalAcc) : null,
      bestGain: r.bestAcc !== null && base?.bestAcc != null ? pp(r.bestAcc, base.bestAcc) : null,
      gainNote,
      referenceGain: baseRef === undefined ? null : r.referenceAcc - baseRef,
    };
  });

  return { conditions, results };
}
