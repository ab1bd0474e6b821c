// Vega-Lite specs become static SVG here, in Node, so the report page needs no script at all
// and prints; the same SVG becomes a PNG for READMEs and papers.
import { Resvg, type ResvgRenderOptions } from '@resvg/resvg-js';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

/** One font everywhere: Vega sizes its labels for it, the browser and resvg draw with it. */
export const CHART_FONT = 'DejaVu Sans, Verdana, Helvetica, Arial, sans-serif';

const theme = {
  font: CHART_FONT,
  background: 'white',
  view: { stroke: '#ddd' },
  axis: { labelFontSize: 11, titleFontSize: 12, titleFontWeight: 'normal', gridColor: '#eee' },
  legend: { labelFontSize: 11, titleFontSize: 12, titleFontWeight: 'normal' },
  title: { fontSize: 14, anchor: 'start', fontWeight: 'bold' },
  header: { labelFontSize: 12, titleFontSize: 12 },
} as const;

/**
 * Renders a Vega-Lite spec to an SVG string. `idPrefix` is put before every id inside the SVG
 * (clip paths, gradients): several charts inlined in one page would otherwise share ids.
 */
export async function renderSvg(spec: TopLevelSpec, idPrefix: string): Promise<string> {
  const themed = { ...spec, config: { ...theme, ...(spec.config ?? {}) } } as TopLevelSpec;
  const view = new vega.View(vega.parse(compile(themed).spec), { renderer: 'none' });
  try {
    const svg = await view.toSVG();
    return svg
      .replace(/\bid="([^"]+)"/g, `id="${idPrefix}-$1"`)
      .replace(/url\(#([^)]+)\)/g, `url(#${idPrefix}-$1)`)
      .replace(/href="#([^"]+)"/g, `href="#${idPrefix}-$1"`);
  } finally {
    view.finalize();
  }
}

/** resvg draws text only with fonts it finds: the system's (fonts-dejavu-core on Debian). */
export function resvgOptions(scale: number): ResvgRenderOptions {
  return {
    fitTo: { mode: 'zoom', value: scale },
    font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans', sansSerifFamily: 'DejaVu Sans' },
  };
}

/** Rasterizes an SVG at `scale` × its size. */
export function svgToPng(svg: string, scale = 2): Buffer {
  return new Resvg(svg, resvgOptions(scale)).render().asPng();
}
