// selab's public API.
export * from './se/squeeze-excitation.js';
export * from './models/plain10.js';
export * from './models/vgg16.js';
export * from './models/mobilenet.js';
export * from './models/head.js';
export * from './models/rewrite.js';
export * from './models/presets.js';
export * from './models/cases.js';
export * from './models/all.js'; // registry API, with every model registered
export * from './train/optimizers.js';
export * from './models/summary.js';
