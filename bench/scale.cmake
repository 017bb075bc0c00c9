# scale_bench: issue 14 item 10, 10,000 concurrent READs over 1,000 open objects through the
# real lazyblobd on the KernelSimulator; worker RSS and fd count vs its bounds
# (bench/results/scale.md).
if(TARGET lazyblobd AND TARGET lazyblob_store AND TARGET lazyblob_transport)
  add_executable(scale_bench ${PROJECT_SOURCE_DIR}/bench/scale_bench.cc)
  target_link_libraries(scale_bench PRIVATE lazyblob_store lazyblob_transport lazyblob_core
    CLI11::CLI11 nlohmann_json::nlohmann_json Threads::Threads)
  add_dependencies(scale_bench lazyblobd)
endif()
