{
  "targets": [
    {
      "target_name": "selab_onednn",
      "sources": ["<!@(node -p \"require('fs').readdirSync('src').filter(f => f.endsWith('.cc')).map(f => 'src/' + f).join(' ')\")"],
      "include_dirs": ["<!@(node -p \"require('node-addon-api').include\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS"],
      "cflags_cc": ["-std=c++17", "-O3", "-march=native", "-mprefer-vector-width=256", "-fno-math-errno", "-fopenmp", "-fno-exceptions"],
      "cflags_cc!": ["-fno-rtti"],
      "libraries": ["-ldnnl", "-fopenmp"]
    }
  ]
}
