# registry_layout_bench: the measurement behind registry/FORMAT.md's bundle decision
# (run it with bench/registry/layout.sh, which starts the registry).
add_executable(registry_layout_bench ${CMAKE_CURRENT_LIST_DIR}/registry_layout_bench.cc)
target_link_libraries(registry_layout_bench PRIVATE lazyblob_registry)
