import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import globals from 'globals';

// selab's layers, lowest first. A module may import from its own folder and from the folders of
// lower layers only; src/index.ts (the public API) sits above them all.
export const LAYERS = [
  ['util', 'ops'],
  ['backend', 'data', 'attention'],
  ['models'],
  ['runs'],
  ['engine'],
  ['experiments'],
  ['report', 'bench', 'cluster'],
  ['cli'],
];

function layerRules() {
  return LAYERS.flatMap((layer, rank) => layer.map((folder) => {
    const above = LAYERS.slice(rank).flat().filter((f) => f !== folder);
    return {
      files: [`src/${folder}/**/*.ts`],
      rules: {
        'no-restricted-imports': ['error', {
          patterns: [{
            regex: `^(\\./|(\\.\\./)+)(${above.join('|')})/`,
            message: `src/${folder} is in a lower layer than ${above.map((f) => `src/${f}`).join(', ')}: it may only import from ${LAYERS.slice(0, rank).flat().map((f) => `src/${f}`).join(', ') || 'its own folder'} (see eslint.config.js).`,
          }],
        }],
      },
    };
  }));
}

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'native/build/**', 'runs/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_' }],
    },
  },
  ...layerRules(),
);
