# lazyblobd daemon tests need the store (to build a real store) and the kernel simulator.
if(TARGET tools_test AND TARGET lazyblobd)
  target_link_libraries(tools_test PRIVATE lazyblob_store lazyblob_transport)
endif()
