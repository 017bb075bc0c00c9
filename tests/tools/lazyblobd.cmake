# lazyblobd daemon tests need the store (to build a real store) and the kernel simulator;
# the config tests compile the daemon's flag/TOML parser in.
if(TARGET tools_test AND TARGET lazyblobd)
  target_sources(tools_test PRIVATE ${PROJECT_SOURCE_DIR}/tools/lazyblobd_config.cc
    ${PROJECT_SOURCE_DIR}/tools/lazyblobd_origin_config.cc)
  target_link_libraries(tools_test PRIVATE lazyblob_store lazyblob_transport CLI11::CLI11
    PkgConfig::TOMLPP)
endif()
