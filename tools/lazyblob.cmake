# lazyblob: the offline CLI (import/ls/stat/export/verify/rm/gc/rebuild-index, and
# push/pull/ls --registry against an OCI registry, trace show/rm).
# lazyblob_cli holds everything but main() so tests/tools can unit-test the helpers.
add_library(lazyblob_cli STATIC
  ${CMAKE_CURRENT_LIST_DIR}/lazyblob_atomic_file.cc
  ${CMAKE_CURRENT_LIST_DIR}/lazyblob_cmd_maint.cc
  ${CMAKE_CURRENT_LIST_DIR}/lazyblob_cmd_mount.cc
  ${CMAKE_CURRENT_LIST_DIR}/lazyblob_cmd_read.cc
  ${CMAKE_CURRENT_LIST_DIR}/lazyblob_cmd_registry.cc
  ${CMAKE_CURRENT_LIST_DIR}/lazyblob_cmd_trace.cc
  ${CMAKE_CURRENT_LIST_DIR}/lazyblob_commands.cc
  ${CMAKE_CURRENT_LIST_DIR}/lazyblob_control_protocol.cc
  ${CMAKE_CURRENT_LIST_DIR}/lazyblob_exit.cc
  ${CMAKE_CURRENT_LIST_DIR}/lazyblob_format.cc
  ${CMAKE_CURRENT_LIST_DIR}/lazyblob_output.cc
  ${CMAKE_CURRENT_LIST_DIR}/lazyblob_progress.cc)
target_link_libraries(lazyblob_cli PUBLIC lazyblob_tools_common lazyblob_registry lazyblob_store
  lazyblob_core nlohmann_json::nlohmann_json Threads::Threads)

add_executable(lazyblob ${CMAKE_CURRENT_LIST_DIR}/lazyblob_main.cc)
target_link_libraries(lazyblob PRIVATE lazyblob_cli CLI11::CLI11)
install(TARGETS lazyblob RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
