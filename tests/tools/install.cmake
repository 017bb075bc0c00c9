# install_check.sh: `cmake --install` of this build into a temp prefix, the files an
# installed lazyblob needs, and `systemd-analyze verify` of the installed unit.
if(TARGET lazyblob_docs)
  add_test(NAME tools.install_check
    COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/install_check.sh ${PROJECT_BINARY_DIR})
  set_tests_properties(tools.install_check PROPERTIES TIMEOUT 120)
endif()
