// Runs at `npm install`: builds the oneDNN addon when the toolchain and libdnnl-dev are
// present. A failed build must never fail the install; selab then falls back to wasm/cpu
// and explains what is missing when the backend is first chosen.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

// Without network, node-gyp must use headers already on the machine: npm's configured
// nodedir, or the system Node's /usr/include/node.
function nodedirArgs() {
  const configured = process.env.npm_config_nodedir;
  if (configured) return [`--nodedir=${configured}`];
  const prefix = dirname(dirname(process.execPath));
  return existsSync(join(prefix, 'include', 'node', 'node_api.h')) ? [`--nodedir=${prefix}`] : [];
}

let gyp;
try {
  gyp = require.resolve('node-gyp/bin/node-gyp.js');
} catch {
  console.warn('selab: node-gyp is not installed; skipping the native oneDNN backend.');
  process.exit(0);
}
const result = spawnSync(process.execPath, [gyp, 'rebuild', '--jobs', 'max', ...nodedirArgs()], { cwd: here, stdio: 'inherit' });
if (result.status !== 0) {
  console.warn(
    'selab: the native oneDNN backend was not built (see the messages above). ' +
      'Install its build dependencies with `apt-get install -y libdnnl-dev g++ make` and run `npm rebuild selab` or `node native/build.mjs`. ' +
      'selab still works on the wasm and cpu backends.',
  );
}
process.exit(0);
