# origin_bench: one timed container start through lazyblobd on the kernel simulator (run
# it with bench/origin/run.sh, which starts the registry and the delaying proxy).
add_executable(origin_bench ${CMAKE_CURRENT_LIST_DIR}/origin_bench.cc)
target_link_libraries(origin_bench PRIVATE lazyblob_transport)
