# fanotify_bench: cold/warm reads through lazyblobd's fanotify front end vs EROFS file-backed
# mounts of the raw and the lz4hc image, plus the limit loop; driven by bench/fanotify/run.sh.
if(TARGET lazyblob_store AND TARGET lazyblobd AND TARGET lazyblob)
  add_executable(fanotify_bench
    ${PROJECT_SOURCE_DIR}/bench/fanotify_bench.cc
    ${PROJECT_SOURCE_DIR}/bench/read_bench_limit.cc)
  target_link_libraries(fanotify_bench PRIVATE lazyblob_store lazyblob_transport lazyblob_core PkgConfig::ZSTD
    PkgConfig::XXHASH CLI11::CLI11 nlohmann_json::nlohmann_json)
  add_dependencies(fanotify_bench lazyblobd lazyblob)
endif()
