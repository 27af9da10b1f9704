*** Settings ***
Documentation     KG-4: the health monitor detects failures within its bound, fires its recovery actions
...               at their thresholds, alerts, reports the stack accurately in every state, and raises
...               no false alarm.
...
...               The contract's monitor: checks every ``monitor_interval_s`` (30 s in production, 1 s in
...               the fast profile), unhealthy after 2 consecutive failures; recovery rules redis 3 ->
...               restart, rag_api 2 -> restart and 5 -> clear cache, vikunja 3 -> restart and 5 ->
...               reconnect database; a service still failing is restarted again once the restart cooldown
...               (180 s for rag_api in production) is over. Detection bound: ``${HEALTH_DETECTION_BOUND_S}`` s.
...
...               Testbed defects this suite catches: ``monitor-misses-stopped-service``,
...               ``monitor-slow-detection``, ``monitor-no-restart``, ``alert-never-sent``,
...               ``alert-wrong-payload``, ``aggregate-always-healthy``, ``monitor-false-positive``,
...               ``checkers-report-no-details``, ``monitor-no-reconnect``, ``aggregate-omits-task-service``,
...               ``gateway-drops-aggregate-health``, ``monitor-failures-not-reset``,
...               ``monitor-restart-ignores-cooldown``, ``monitor-restarts-once-per-streak``,
...               ``monitor-summary-misses-unhealthy``, ``monitor-unhealthy-lapses``.

Resource          ../resources/xnai.resource

Suite Setup       Open Target Sessions And Start The Alert Receiver
Suite Teardown    Stop Alert Receiver
Test Setup        Wait Until The Stack Is Healthy And Start Watching
Test Teardown     Remove All Faults
Test Timeout      ${TEST_TIMEOUTS}[kg4]

Test Tags         kg4    P1    destructive


*** Test Cases ***
Monitor Reports Every Service Healthy
    [Tags]    requires:health-monitor
    ${report}    Get Health Report
    Should Be True    ${report}[monitoring_active]    The monitor is not running its checks
    Should Be Equal As Integers    ${report}[summary][healthy]    ${report}[summary][total]
    ...    Not every service is healthy: ${report}[summary]

HTTP Checker Reports Status And Response Time
    [Tags]    requires:health-monitor    catches:checkers-report-no-details
    ${report}    Get Health Report
    VAR    ${rag_api}    ${report}[services][rag_api]
    Should Be Equal As Integers    ${rag_api}[details][status_code]    200
    Should Be True    0 < ${rag_api}[response_time] < ${TIMINGS}[check_timeout_s]

Redis Checker Reports Ping And Memory
    [Tags]    requires:health-monitor    catches:checkers-report-no-details
    ${report}    Get Health Report
    VAR    ${redis}    ${report}[services][redis][details]
    Should Be True    ${redis}[ping]    The Redis checker did not PING
    Should Be True    ${redis}[used_memory] > 0    The Redis checker reports no memory use
    Should Be True    ${redis}[memory_percent] < 94    Redis memory above the seed's 94 %

Database Checker Runs A Query
    [Tags]    requires:health-monitor    catches:checkers-report-no-details
    ${report}    Get Health Report
    VAR    ${postgres}    ${report}[services][postgres][details]
    Should Be Equal As Integers    ${postgres}[result]    1    The database checker's query did not answer 1

The Report Counts Each Service's Checks In A Row
    [Documentation]    The contract's counters, after MkDocs failed and answered again: each service's run of
    ...    failures or of successes (one of them zero), never more than its checks; a healthy service has no
    ...    failure in its run, so its next failure starts a new count towards the threshold.
    [Tags]    requires:health-monitor    requires:service-control    requires:mkdocs
    ...    catches:monitor-failures-not-reset    catches:monitor-misses-stopped-service
    ...    catches:monitor-slow-detection
    Stop Service    mkdocs
    Wait Until Monitor Reports    mkdocs    unhealthy
    Remove All Faults
    Wait Until Monitor Reports    mkdocs    healthy
    ${report}    Get Health Report
    Check Counts Should Be Consistent    ${report}

The Report's Summary Counts Each Status
    [Documentation]    With MkDocs down, the summary counts it unhealthy and the others healthy: each status's
    ...    count is the number of services the report gives that status.
    [Tags]    requires:health-monitor    requires:service-control    requires:mkdocs
    ...    catches:monitor-misses-stopped-service    catches:monitor-slow-detection
    ...    catches:monitor-summary-misses-unhealthy
    Stop Service    mkdocs
    Wait Until Monitor Reports    mkdocs    unhealthy
    ${report}    Get Health Report
    Summary Should Count The Services    ${report}

A Stopped Service Is Detected Within The Bound
    [Documentation]    MkDocs has no recovery rule, so it stays down while the monitor notices.
    [Tags]    requires:health-monitor    requires:service-control    requires:mkdocs
    ...    catches:monitor-misses-stopped-service    catches:monitor-slow-detection
    Stop Service    mkdocs
    ${seconds}    Wait Until Monitor Reports    mkdocs    unhealthy
    Log    Detected a stopped MkDocs in ${seconds} s (bound ${HEALTH_DETECTION_BOUND_S} s)

A Stopped Service Stays Unhealthy While Its Checks Fail
    [Documentation]    Unhealthy is a state, not a moment: MkDocs stays down, and the monitor keeps reporting it
    ...    unhealthy over its next three failed checks (past the two that made it unhealthy).
    [Tags]    requires:health-monitor    requires:service-control    requires:mkdocs
    ...    catches:monitor-misses-stopped-service    catches:monitor-slow-detection
    ...    catches:monitor-unhealthy-lapses
    Stop Service    mkdocs
    Wait Until Monitor Reports    mkdocs    unhealthy
    Monitor Should Keep Reporting    mkdocs    unhealthy    checks=3

A Paused Service Is Detected Within The Bound
    [Documentation]    A paused (SIGSTOP) service accepts connections and never answers: only the
    ...    check timeout catches it.
    [Tags]    requires:health-monitor    requires:service-control    requires:mkdocs    catches:monitor-slow-detection
    Pause Service    mkdocs
    ${seconds}    Wait Until Monitor Reports    mkdocs    unhealthy
    Log    Detected a paused MkDocs in ${seconds} s (bound ${HEALTH_DETECTION_BOUND_S} s)

The Monitor Restarts A Stopped RAG API
    [Tags]    slow    requires:health-monitor    requires:service-control    catches:monitor-misses-stopped-service
    ...    catches:monitor-no-restart
    Stop Service    rag_api
    ${action}    Wait For Recovery Action    rag_api    restart
    Recovery Action Should Have Fired At    ${action}    2
    Wait Until Monitor Reports    rag_api    healthy    timeout=${HEALTH_RECOVERY_BOUND_S}s
    Ask The RAG API    Is the API back?    via=direct

The Monitor Restarts A Stopped Redis
    [Tags]    slow    requires:health-monitor    requires:service-control    catches:monitor-no-restart
    Stop Service    redis
    ${action}    Wait For Recovery Action    redis    restart
    Recovery Action Should Have Fired At    ${action}    3
    Wait Until Monitor Reports    redis    healthy    timeout=${HEALTH_RECOVERY_BOUND_S}s
    Redis Should Answer Ping

The Monitor Restarts A Stopped Chainlit UI
    [Tags]    slow    requires:health-monitor    requires:service-control    requires:ui    catches:monitor-no-restart
    Stop Service    ui
    ${action}    Wait For Recovery Action    ui    restart
    Recovery Action Should Have Fired At    ${action}    2
    Wait Until Monitor Reports    ui    healthy    timeout=${HEALTH_RECOVERY_BOUND_S}s
    ${answer}    Ask Through The UI    Is the UI back?
    UI Answer Should Be Streamed    ${answer}

The Monitor Clears The API Cache After Five Failures
    [Documentation]    With the API cut off from its clients, a restart cannot help; at five failures
    ...    the monitor clears the query cache, and Redis shows it.
    [Tags]    slow    requires:fault-proxy    requires:health-monitor    catches:monitor-misses-stopped-service
    Ask The RAG API    What does the monitor clear after five failures?    via=direct
    ${cached}    Count Redis Keys    query:*
    Should Be True    ${cached} > 0    The query left nothing in the cache
    Cut Off Service    rag_api
    ${action}    Wait For Recovery Action    rag_api    clear_cache
    Recovery Action Should Have Fired At    ${action}    5
    ${left}    Count Redis Keys    query:*
    Should Be Equal As Integers    ${left}    0    Cache entries left after clear_cache

The Monitor Reconnects The Task Service To Its Database
    [Documentation]    With PostgreSQL cut off, the task service fails its checks; the monitor restarts
    ...    it at three failures and asks it to reconnect at five. Once the path is back it is healthy.
    [Tags]    slow    requires:fault-proxy    requires:health-monitor    requires:vikunja
    ...    catches:monitor-no-reconnect    catches:monitor-no-restart
    Cut Off Service    postgres
    ${restart}    Wait For Recovery Action    vikunja    restart
    Recovery Action Should Have Fired At    ${restart}    3
    ${action}    Wait For Recovery Action    vikunja    reconnect_database
    Recovery Action Should Have Fired At    ${action}    5
    Remove All Faults
    Wait Until Monitor Reports    vikunja    healthy    timeout=${HEALTH_RECOVERY_BOUND_S}s

A Failing RAG API Is Restarted Again Once Its Cooldown Is Over
    [Documentation]    The contract's restart cooldown (``${TIMINGS}[restart_cooldown_s]`` s): while the API stays
    ...    cut off from its clients, the monitor restarts it at two failures, not again inside the cooldown,
    ...    and again at the first check after it.
    [Tags]    slow    requires:fault-proxy    requires:health-monitor    catches:monitor-no-restart
    ...    catches:monitor-restart-ignores-cooldown    catches:monitor-restarts-once-per-streak
    Cut Off Service    rag_api
    ${first}    Wait For Recovery Action    rag_api    restart
    Wait For The Restart After The Cooldown    rag_api    ${first}

An Alert Names The Service, Its Status And The Time
    [Documentation]    The alert for a stopped MkDocs is well formed and comes from degraded: the service's
    ...    run of failures started afresh (a run not reset at its last success would go straight to unhealthy).
    [Tags]    requires:health-monitor
    ...    requires:service-control
    ...    requires:mkdocs
    ...    requires:monitor-alerts
    ...    catches:alert-never-sent
    ...    catches:alert-wrong-payload
    ...    catches:monitor-failures-not-reset
    ...    catches:monitor-misses-stopped-service
    Stop Service    mkdocs
    ${alert}    Wait For Alert    mkdocs    unhealthy
    Alert Should Be Well Formed    ${alert}
    Should Be Equal    ${alert}[previous_status]    degraded

The Stack Serves An Aggregate Health Report
    [Documentation]    The seed's aggregate ``GET /health`` at the gateway answers with an overall status,
    ...    each service's status and a fresh timestamp. It needs nothing but the gateway: a stack
    ...    without it fails here, while the tests that read its health monitor skip without one.
    [Tags]    catches:gateway-drops-aggregate-health
    [Setup]    NONE
    ${health}    Get Aggregate Health    if_missing=fail
    Aggregate Health Should Be Complete    ${health}

Aggregate Health Is Complete Through The Gateway
    [Documentation]    The gateway's aggregate names every service the monitor checks, each with a status.
    [Tags]    requires:health-monitor    catches:aggregate-omits-task-service
    ${report}    Get Health Report
    ${health}    Get Aggregate Health
    Aggregate Health Should Be Complete    ${health}    checked=${report}[services]
    Should Be Equal    ${health}[status]    healthy

Aggregate Health Is Degraded While A Secondary Service Is Down
    [Tags]    requires:health-monitor    requires:service-control    requires:mkdocs
    ...    catches:aggregate-always-healthy    catches:monitor-misses-stopped-service
    ...    catches:monitor-slow-detection
    Stop Service    mkdocs
    Wait Until Monitor Reports    mkdocs    unhealthy
    ${health}    Get Aggregate Health
    Should Be Equal    ${health}[status]    degraded    Aggregate status with MkDocs down
    Should Be Equal    ${health}[services][mkdocs]    unhealthy

Aggregate Health Is Unhealthy While The RAG API Is Unreachable
    [Tags]    requires:fault-proxy    requires:health-monitor    catches:aggregate-always-healthy
    ...    catches:monitor-misses-stopped-service    catches:monitor-slow-detection
    Cut Off Service    rag_api
    ${health}    Wait Until Aggregate Health Is    unhealthy
    Should Be Equal    ${health}[services][rag_api]    unhealthy

Queries Still Answer While The Task Service Is Down
    [Documentation]    Graceful degradation: the task service is not on the query path.
    [Tags]    requires:health-monitor    requires:service-control    requires:vikunja
    Stop Service    vikunja
    ${answer}    Ask The RAG API    How does XNAi keep answering when Vikunja is down?
    Answer Should Cite Sources    ${answer}

No False Alarm Under Normal Load With A Slower API
    [Documentation]    150 ms of extra latency on the API path is slow-ish but healthy (the check
    ...    timeout is ${TIMINGS}[check_timeout_s] s): over several monitor intervals of normal load no
    ...    service leaves healthy, no recovery action fires and no alert is sent.
    [Tags]    load    slow    requires:fault-proxy    requires:health-monitor    catches:monitor-false-positive
    Add Latency    rag_api    150ms
    ${result}    Run Load    ${RAG_API_URL}${API_PREFIX}${HEALTH_PATH}    rate=10/s
    ...    duration=${HEALTH_DETECTION_BOUND_S}s    name=quiet-period
    Error Rate Should Be Below    ${result}    0.001
    ${report}    Get Health Report
    Should Be Equal As Integers    ${report}[summary][healthy]    ${report}[summary][total]
    No Recovery Action Should Have Been Taken
    No Alert Should Have Arrived


*** Keywords ***
Open Target Sessions And Start The Alert Receiver
    [Documentation]    Sessions on the target, and the receiver the monitor's alert callbacks reach.
    Open Target Sessions
    Start Alert Receiver

Wait Until The Stack Is Healthy And Start Watching
    [Documentation]    Every test starts from a stack the monitor sees healthy (the previous test's
    ...    service may still be restarting; judged from the detailed report, not the aggregate the
    ...    suite tests), and ignores actions and alerts from before.
    Wait Until Monitor Reports Every Service Healthy
    Start Watching The Health Monitor

Recovery Action Should Have Fired At
    [Documentation]    The action fired at the rule's failure count.
    [Arguments]    ${action}    ${failures}
    Should Be Equal As Integers    ${action}[failures]    ${failures}    The action fired at the wrong failure count
