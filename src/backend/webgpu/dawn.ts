// WebGPU in Node through Dawn (the optional npm package `webgpu`): loads it, installs the
// globals tfjs-backend-webgpu expects (GPUBufferUsage, navigator.gpu, ...), and tells a hardware
// adapter from a software one. On Linux Dawn drives the GPU through Vulkan, so it needs the
// Vulkan loader (libvulkan.so.1) and a driver's ICD manifest; without them it prints warnings of
// its own, which is why `auto` first looks for both without asking Dawn.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';

/** What selab needs of an adapter's GPUAdapterInfo. */
export interface AdapterReport {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** A CPU implementation (SwiftShader, lavapipe, llvmpipe) or a fallback adapter. */
  software: boolean;
}

export type WebGpuProbe = { ok: true; adapter: AdapterReport } | { ok: false; reason: string };

interface DawnAdapterInfo {
  vendor?: string;
  architecture?: string;
  device?: string;
  description?: string;
  isFallbackAdapter?: boolean;
}

interface DawnAdapter {
  info?: DawnAdapterInfo;
  isFallbackAdapter?: boolean;
}

interface DawnGpu {
  requestAdapter(options?: { powerPreference?: 'low-power' | 'high-performance' }): Promise<DawnAdapter | null>;
}

interface DawnModule {
  create(flags: string[]): DawnGpu;
  globals: Record<string, unknown>;
}

const SOFTWARE = /swiftshader|llvmpipe|lavapipe|softpipe|software/i;

/** A software (CPU) Vulkan implementation or a fallback adapter, by its adapter info. */
export function isSoftwareAdapter(info: DawnAdapterInfo, fallback = false): boolean {
  return fallback || info.isFallbackAdapter === true || [info.vendor, info.architecture, info.device, info.description].some((s) => s !== undefined && SOFTWARE.test(s));
}

function split(value: string | undefined): string[] {
  return (value ?? '').split(delimiter).filter(Boolean);
}

/**
 * The Vulkan ICD manifests (driver files) the Vulkan loader would consider: VK_DRIVER_FILES or
 * its older name VK_ICD_FILENAMES (files or folders) replace the search, VK_ADD_DRIVER_FILES adds
 * to it; otherwise the XDG config and data folders, /etc and /usr/share.
 */
export function vulkanDriverFiles(env: NodeJS.ProcessEnv = process.env): string[] {
  const listJson = (dir: string) => {
    try {
      return readdirSync(dir).filter((f) => f.endsWith('.json')).map((f) => join(dir, f));
    } catch {
      return [];
    }
  };
  const expand = (p: string) => (p.endsWith('.json') ? (existsSync(p) ? [p] : []) : listJson(p));
  const explicit = split(env.VK_DRIVER_FILES ?? env.VK_ICD_FILENAMES);
  const added = split(env.VK_ADD_DRIVER_FILES).flatMap(expand);
  if (explicit.length > 0) return [...explicit.flatMap(expand), ...added];
  const home = env.HOME ?? homedir();
  const config = [env.XDG_CONFIG_HOME ?? join(home, '.config'), ...split(env.XDG_CONFIG_DIRS ?? '/etc/xdg'), '/etc'];
  const data = [env.XDG_DATA_HOME ?? join(home, '.local/share'), ...split(env.XDG_DATA_DIRS ?? '/usr/local/share:/usr/share')];
  return [...new Set([...config, ...data].map((d) => join(d, 'vulkan', 'icd.d')))].flatMap(listJson).concat(added);
}

/** Whether the dynamic linker can find libvulkan.so.1 (LD_LIBRARY_PATH, its cache, the usual folders). */
export function hasVulkanLoader(env: NodeJS.ProcessEnv = process.env): boolean {
  const name = 'libvulkan.so.1';
  if (split(env.LD_LIBRARY_PATH).some((d) => existsSync(join(d, name)))) return true;
  try {
    if (readFileSync('/etc/ld.so.cache').includes(name)) return true;
  } catch {
    // no cache: look in the default folders below
  }
  return ['/lib', '/usr/lib', '/lib64', '/usr/lib64', '/usr/lib/x86_64-linux-gnu', '/lib/x86_64-linux-gnu', '/usr/lib/aarch64-linux-gnu'].some((d) => existsSync(join(d, name)));
}

/**
 * Whether a hardware Vulkan driver may be present, judged without loading Dawn: the loader is
 * found and at least one ICD manifest is not a known software implementation. `auto` asks Dawn
 * only then.
 */
export function mayHaveHardwareVulkan(env: NodeJS.ProcessEnv = process.env): boolean {
  if (process.platform !== 'linux') return true;
  return hasVulkanLoader(env) && vulkanDriverFiles(env).some((f) => !SOFTWARE.test(f) && !/lvp_icd/.test(f));
}

let dawn: Promise<DawnModule | Error> | undefined;

async function loadDawn(): Promise<DawnModule | Error> {
  // A variable specifier keeps `webgpu` an optional package that typechecking does not need.
  const specifier = 'webgpu';
  try {
    return (await import(specifier)) as DawnModule;
  } catch (e) {
    return e as Error;
  }
}

let installed: DawnGpu | undefined;

/**
 * Loads Dawn and installs the WebGPU globals once; returns navigator.gpu, or why it cannot. Node 20
 * has no `navigator`; a newer Node has one without `gpu`, which is then added to it.
 */
export async function installWebGpuGlobals(): Promise<DawnGpu | string> {
  if (installed) return installed;
  dawn ??= loadDawn();
  const mod = await dawn;
  if (mod instanceof Error) {
    return /Cannot find (module|package)|ERR_MODULE_NOT_FOUND/.test(mod.message)
      ? 'the optional package `webgpu` (Dawn for Node) is not installed: run `npm install --include=optional` on x86-64 or arm64 Linux, macOS or Windows'
      : `Dawn (npm \`webgpu\`) failed to load: ${mod.message.split('\n')[0]}`;
  }
  for (const [k, v] of Object.entries(mod.globals)) {
    if (!(k in globalThis)) Object.defineProperty(globalThis, k, { value: v, writable: true, configurable: true });
  }
  const gpu = mod.create([]);
  const g = globalThis as { navigator?: { gpu?: unknown } };
  if (g.navigator && typeof g.navigator === 'object') {
    Object.defineProperty(g.navigator, 'gpu', { value: gpu, writable: true, configurable: true });
  } else {
    Object.defineProperty(globalThis, 'navigator', { value: { gpu }, writable: true, configurable: true });
  }
  installed = gpu;
  return gpu;
}

let probed: Promise<WebGpuProbe> | undefined;

/** The adapter tfjs-backend-webgpu would take (high-performance), or why there is none. Once per process. */
export function probeWebGpu(): Promise<WebGpuProbe> {
  probed ??= (async (): Promise<WebGpuProbe> => {
    const gpu = await installWebGpuGlobals();
    if (typeof gpu === 'string') return { ok: false, reason: gpu };
    let adapter: DawnAdapter | null;
    try {
      adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
    } catch (e) {
      return { ok: false, reason: `Dawn could not request a WebGPU adapter: ${(e as Error).message.split('\n')[0]}` };
    }
    if (!adapter) {
      const why = !hasVulkanLoader()
        ? 'the Vulkan loader libvulkan.so.1 is not installed (`apt-get install -y libvulkan1`)'
        : vulkanDriverFiles().length === 0
          ? 'no Vulkan driver is installed (no ICD file; name one with VK_DRIVER_FILES)'
          : `no Vulkan driver of ${vulkanDriverFiles().join(', ')} gave an adapter`;
      return { ok: false, reason: `Dawn found no WebGPU adapter: ${why}` };
    }
    const info = adapter.info ?? {};
    return {
      ok: true,
      adapter: {
        vendor: info.vendor ?? '',
        architecture: info.architecture ?? '',
        device: info.device ?? '',
        description: info.description ?? '',
        software: isSoftwareAdapter(info, adapter.isFallbackAdapter === true),
      },
    };
  })();
  return probed;
}

/** One line naming an adapter, e.g. "NVIDIA H200 (nvidia hopper)". */
export function describeAdapter(a: AdapterReport): string {
  const detail = [a.vendor, a.architecture].filter(Boolean).join(' ');
  return `${a.description || a.device || 'unnamed adapter'}${detail ? ` (${detail})` : ''}${a.software ? ', software' : ''}`;
}
