/**
 * Parses a case selection such as `1-7`, `1,2,5-7` or `3` into sorted, distinct ids.
 * `flag` names the option in error messages; `known` lists the valid ids.
 */
export function parseCaseList(text: string, known: readonly number[], flag = '--cases'): number[] {
  const ids = new Set<number>();
  const parts = text.split(',').map((p) => p.trim());
  for (const part of parts) {
    const m = /^(\d+)(?:\s*-\s*(\d+))?$/.exec(part);
    if (!m) {
      throw new Error(`${flag} "${text}": "${part}" is not a case number or range; expected e.g. 1-7 or 1,2,5-7`);
    }
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    if (to < from) throw new Error(`${flag} "${text}": range ${part} runs backwards; expected from-to with from ≤ to`);
    for (let id = from; id <= to; id++) {
      if (!known.includes(id)) {
        throw new Error(`${flag} "${text}": unknown case ${id}; known cases: ${formatIds(known)}`);
      }
      ids.add(id);
    }
  }
  return [...ids].sort((a, b) => a - b);
}

function formatIds(ids: readonly number[]): string {
  return [...ids].sort((a, b) => a - b).join(', ');
}
