{
  "targets": [
    {
      "target_name": "tsbuild_native",
      "sources": [
        "native/addon.c",
        "native/network.c"
      ],
      "libraries": [
        "-ldl"
      ],
      "cflags": [
        "-O2",
        "-Wall"
      ]
    },
    {
      "target_name": "tsbuild-sandbox",
      "type": "executable",
      "sources": [
        "native/sandbox.c"
      ],
      "cflags": [
        "-O2",
        "-Wall"
      ]
    },
    {
      "target_name": "tsbuild-userns",
      "type": "executable",
      "sources": [
        "native/userns.c"
      ],
      "cflags": [
        "-O2",
        "-Wall"
      ]
    }
  ]
}
