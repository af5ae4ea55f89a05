{
  "targets": [
    {
      "target_name": "kmsvol_native",
      "sources": ["src/kmsvol_native.c"],
      "cflags": ["-O3", "-Wall", "-Wextra", "-Wno-unused-parameter", "-fstack-protector-strong", "-D_FORTIFY_SOURCE=2"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
