# read_bench: the request engine over a real ChunkStore and the KernelSimulator vs the
# limit loop (pread + ZSTD_decompress + O_DIRECT pwrite); driven by bench/run.sh.
if(TARGET lazyblob_store AND TARGET lazyblob_transport)
  add_executable(read_bench
    ${PROJECT_SOURCE_DIR}/bench/read_bench.cc
    ${PROJECT_SOURCE_DIR}/bench/read_bench_engine.cc
    ${PROJECT_SOURCE_DIR}/bench/read_bench_limit.cc)
  target_link_libraries(read_bench PRIVATE lazyblob_store lazyblob_transport lazyblob_core
    PkgConfig::ZSTD PkgConfig::XXHASH CLI11::CLI11 nlohmann_json::nlohmann_json)
endif()
