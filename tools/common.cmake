# lazyblob_tools_common: what both binaries share (one size grammar, one version string,
# one StoreStats -> StoreGauges mapping). Included first (the glob sorts it before the
# binaries' .cmake files).
add_library(lazyblob_tools_common STATIC
  ${CMAKE_CURRENT_LIST_DIR}/byte_size.cc
  ${CMAKE_CURRENT_LIST_DIR}/tool_version.cc
  ${CMAKE_CURRENT_LIST_DIR}/store_gauges_from_stats.cc)
target_link_libraries(lazyblob_tools_common PUBLIC lazyblob_core lazyblob_store lazyblob_metrics)
add_dependencies(lazyblob_tools_common lazyblob_version_header)
