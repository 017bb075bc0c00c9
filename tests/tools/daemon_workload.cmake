# daemon_workload: drives the real lazyblobd on the kernel simulator with a known workload
# and writes the metric values Prometheus must find; prometheus_daemon_integration.sh
# scrapes the daemon with a real Prometheus server and compares (label "integration").
if(TARGET lazyblobd AND TARGET lazyblob_store AND TARGET lazyblob_transport)
  add_executable(daemon_workload ${CMAKE_CURRENT_LIST_DIR}/daemon_workload.cc)
  target_link_libraries(daemon_workload PRIVATE lazyblob_core lazyblob_store
    lazyblob_transport nlohmann_json::nlohmann_json)
  add_dependencies(daemon_workload lazyblobd)
  add_test(NAME tools.prometheus_daemon_integration
    COMMAND bash ${CMAKE_CURRENT_LIST_DIR}/prometheus_daemon_integration.sh
            $<TARGET_FILE:daemon_workload> $<TARGET_FILE:lazyblobd>
            ${PROJECT_SOURCE_DIR}/docs/grafana-dashboard.json)
  set_tests_properties(tools.prometheus_daemon_integration PROPERTIES
    LABELS integration TIMEOUT 120)
endif()
