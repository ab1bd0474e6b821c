// A CIFAR-10 stand-in for timing on a machine without the data set: the binary version's files
// (data_batch_1..5.bin, test_batch.bin, batches.meta.txt) with 50,000 + 10,000 random images and
// labels. An epoch on it costs what an epoch on CIFAR-10 costs; its accuracies mean nothing.
// Usage: node make-data.mjs FOLDER
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = process.argv[2];
if (!dir) throw new Error('usage: node make-data.mjs FOLDER');
mkdirSync(dir, { recursive: true });
const RECORD = 1 + 32 * 32 * 3;
let s = 12345;
function fill(buf) {
  for (let i = 0; i < buf.length; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    buf[i] = s >>> 24;
  }
}
const files = ['data_batch_1.bin', 'data_batch_2.bin', 'data_batch_3.bin', 'data_batch_4.bin', 'data_batch_5.bin', 'test_batch.bin'];
for (const file of files) {
  const buf = Buffer.alloc(10_000 * RECORD);
  fill(buf);
  for (let r = 0; r < 10_000; r++) buf[r * RECORD] = r % 10;
  writeFileSync(join(dir, file), buf);
}
writeFileSync(join(dir, 'batches.meta.txt'), ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck', ''].join('\n'));
console.log(`synthetic CIFAR-10 (random pixels) in ${dir}`);
