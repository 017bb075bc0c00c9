# lazyblobd daemon tests need the store (to build a real store) and the kernel simulator;
# the config tests compile the daemon's flag/TOML parser, preflight checks and logging in,
# the keeper tests its fd keeper.
if(TARGET tools_test AND TARGET lazyblobd)
  target_sources(tools_test PRIVATE ${PROJECT_SOURCE_DIR}/tools/lazyblobd_config.cc
    ${PROJECT_SOURCE_DIR}/tools/lazyblobd_logging.cc
    ${PROJECT_SOURCE_DIR}/tools/lazyblobd_preflight.cc
    ${PROJECT_SOURCE_DIR}/tools/lazyblobd_keeper.cc
    ${PROJECT_SOURCE_DIR}/tools/lazyblobd_read_journal.cc
    ${PROJECT_SOURCE_DIR}/tools/lazyblobd_read_watch.cc
    ${PROJECT_SOURCE_DIR}/tools/lazyblobd_origin_config.cc)
  target_link_libraries(tools_test PRIVATE lazyblob_tools_common lazyblob_store
    lazyblob_transport lazyblob_registry CLI11::CLI11 PkgConfig::TOMLPP spdlog::spdlog fmt::fmt)
endif()
if(TARGET tools_test)
  target_compile_definitions(tools_test PRIVATE LAZYBLOB_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
endif()
