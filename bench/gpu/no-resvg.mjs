// Stands in for @resvg/resvg-js (a native addon) in the GPU measurement bundle, which renders no
// charts: the bundle carries neither the addon nor the report commands that use it.
export class Resvg {
  constructor() {
    throw new Error('selab (GPU bundle): PNG charts are not available in this bundle');
  }
}
