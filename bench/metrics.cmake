# metrics_bench: cost of one READ's worth of EngineStats calls, naive prometheus-cpp
# metrics vs PrometheusEngineStats' per-thread shards.
if(TARGET lazyblob_metrics)
  add_executable(metrics_bench ${PROJECT_SOURCE_DIR}/bench/metrics_bench.cc)
  target_link_libraries(metrics_bench PRIVATE lazyblob_metrics benchmark::benchmark)
endif()
