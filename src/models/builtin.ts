// Non-case variants of the reference models, listed by `selab models` and buildable by name.
import { withClassificationHead } from './head.js';
import { mobilenetV1 } from './mobilenet.js';
import { mobilenetWithSE } from './presets.js';
import { registerModel } from './registry.js';

registerModel({
  name: 'mobilenet-se-dw',
  description: 'MobileNet v1 (128×128) with SE after conv1, every conv_pw_i and every conv_dw_i',
  inputShape: [128, 128, 3],
  build: () => {
    const base = mobilenetV1({ inputShape: [128, 128, 3] });
    const body = mobilenetWithSE(base, { depthwise: true });
    base.dispose(); // the layers live on in `body`
    return withClassificationHead(body, 10, 'mobilenet_se_dw');
  },
});
