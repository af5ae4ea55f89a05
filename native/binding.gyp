{
  "targets": [
    {
      "target_name": "kmsvol_native",
      "sources": ["src/binding.c", "src/engine.c", "src/fuse_server.c", "src/jobq.c", "src/loop.c", "src/paths.c", "src/napi_check.c", "src/keyslot.c"],
      "cflags": ["-O3", "-Wall", "-Wextra", "-Wno-unused-parameter", "-fstack-protector-strong", "-D_FORTIFY_SOURCE=2", "-D_FILE_OFFSET_BITS=64"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
