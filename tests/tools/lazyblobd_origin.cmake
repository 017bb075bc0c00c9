# lazyblobd --origin tests (lazyblobd_origin_test.cc, part of tools_test) need the real
# registries and proxies of tests/registry/registry_env.sh: ctest runs them through it
# (label "registry", like registry_test: plain, ASan and TSan unit stages). Discovered
# without it, they skip.
if(TARGET tools_test AND TARGET lazyblobd AND TARGET lazyblob)
  add_test(NAME tools.lazyblobd_origin
    COMMAND bash ${PROJECT_SOURCE_DIR}/tests/registry/registry_env.sh
            $<TARGET_FILE:tools_test> --gtest_filter=LazyblobdOrigin.*)
  set_tests_properties(tools.lazyblobd_origin PROPERTIES
    LABELS registry TIMEOUT 600 SKIP_RETURN_CODE 77 ENVIRONMENT "${TOOLS_TEST_ENV}")
endif()
