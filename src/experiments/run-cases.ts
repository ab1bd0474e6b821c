// `selab train --case N` and `selab run --cases LIST`: each reference case's preset with the
// overrides applied, checked before anything is written, then trained into OUT/case_N.
import { join } from 'node:path';
import { existingRun } from '../engine/resume.js';
import { resolveConfig, type TrainConfig } from '../runs/config.js';
import { buildCaseModel, caseImagenetArch, CASES, casePreset, getCase } from './cases.js';
import { executeRuns, type Launch, type PlannedRun, type RunOutcome } from './plan.js';
import { parseCaseList } from './ranges.js';

/** Parses `--cases` text against the reference cases. */
export function parseCases(text: string, flag = '--cases'): number[] {
  return parseCaseList(text, CASES.map((c) => c.id), flag);
}

/** Parses `--case N` (a number or a case name such as plain10-se). */
export function parseOneCase(text: string): number {
  try {
    return getCase(text).id;
  } catch (e) {
    throw new Error(`--case: ${(e as Error).message}`, { cause: e });
  }
}

/**
 * Every case's run, checked: a folder that already holds a run needs --resume (and is then
 * continued with its own configuration plus the overrides). Writes nothing.
 */
export async function planCases(caseIds: readonly number[], overrides: Partial<TrainConfig>, out: string, resume: boolean): Promise<PlannedRun[]> {
  const plans: PlannedRun[] = [];
  for (const id of caseIds) {
    const c = getCase(id);
    const runId = `case_${c.id}`;
    const previous = await existingRun(join(out, runId), resume);
    const imagenet = caseImagenetArch(c);
    plans.push({
      id: runId,
      label: `case ${c.id}`,
      describe: { case: c.id, name: c.name, model: c.model, additions: [...c.additions], se: c.se, attention: c.attention, training: c.training, sweep: null },
      config: resolveConfig(previous?.config ?? casePreset(c, overrides.protocol ?? 'reference'), overrides),
      build: (loadBaseWeights) => buildCaseModel(c, loadBaseWeights ? { loadBaseWeights } : {}),
      ...(imagenet ? { imagenet } : {}),
    });
  }
  return plans;
}

export async function runCases(caseIds: readonly number[], overrides: Partial<TrainConfig>, launch: Launch): Promise<RunOutcome[]> {
  return executeRuns(await planCases(caseIds, overrides, launch.out, launch.resume), launch);
}
