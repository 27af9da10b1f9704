*** Settings ***
Documentation    The fault-injection keywords, shown to take effect and to be undone, from the client side.
...
...              Runs against the testbed: service faults through its supervisor (process backend),
...              network and HTTP faults through its fault proxy in front of the RAG API.

Resource         ../resources/xnai.resource

Suite Setup      Open Target Sessions
Test Teardown    Remove All Faults And Wait For Health
Test Timeout     1 minute

Test Tags        faults    destructive


*** Variables ***
${HEALTH}    ${API_PREFIX}${HEALTH_PATH}


*** Test Cases ***
Stopped Service Refuses Connections Until Started
    Stop Service    rag_api    grace=5s
    Service Should Refuse Connections    rag_api
    Start Service    rag_api
    Wait Until Service Is Healthy    rag_api    timeout=30s

Killed Service Comes Back When Started
    Kill Service    redis
    Service Should Refuse Connections    redis
    Start Service    redis
    Wait Until Service Is Healthy    redis    timeout=30s
    Request Should Succeed    ${SERVICES}[rag_api][proxy_url]${HEALTH}
    Redis Should Answer Ping

Paused Service Hangs Then Recovers
    Pause Service    rag_api
    Request Should Fail With    ${RAG_API_URL}${HEALTH}    timeout    timeout=1s
    Resume Service    rag_api
    Wait Until Service Is Healthy    rag_api    timeout=30s

Restart Brings Up A New Instance
    ${before}    Service Instance ID    rag_api
    Restart Service    rag_api    grace=5s
    Wait Until Service Is Healthy    rag_api    timeout=30s
    ${after}    Service Instance ID    rag_api
    Should Not Be Equal    ${before}    ${after}

Added Latency Shows In Response Times And Goes Away
    ${fault}    Add Latency    rag_api    200ms
    ${slow}    Measure Response Times Through The Proxy
    Response Time Should Be Between    ${slow}    p50    200    350
    Remove Fault    ${fault}
    ${fast}    Measure Response Times Through The Proxy
    Response Time Should Be Below    ${fast}    p50    100

Timed Fault Undoes Itself
    Add Latency    rag_api    300ms    duration=1s
    Wait Until Keyword Succeeds    10s    0.2s    Response Through The Proxy Should Be Faster Than    100

Bandwidth Limit Slows A Large Response
    ${full}    Probe URL    ${SERVICES}[rag_api][proxy_url]/openapi.json
    Limit Bandwidth    rag_api    10
    ${slow}    Probe URL    ${SERVICES}[rag_api][proxy_url]/openapi.json    timeout=10s
    Should Be Equal    ${slow}[size]    ${full}[size]
    Should Be True    ${slow}[elapsed_ms] >= ${full}[size] / 10.24 * 0.8    Throughput above 10 KB/s

Reset Connections Are Seen As Resets
    Reset Connections    rag_api
    Request Should Fail With    ${SERVICES}[rag_api][proxy_url]${HEALTH}    reset

Blackholed Service Times Out
    Blackhole Service    rag_api
    Request Should Fail With    ${SERVICES}[rag_api][proxy_url]${HEALTH}    timeout    timeout=1s

Timed Out Connections Are Closed After The Delay
    Time Out Connections    rag_api    300ms
    ${probe}    Request Should Fail With    ${SERVICES}[rag_api][proxy_url]${HEALTH}    closed    timeout=3s
    Should Be True    ${probe}[elapsed_ms] >= 280

Responses Cut Mid-Way Arrive Incomplete
    Cut Responses After    rag_api    200
    Request Should Fail With    ${SERVICES}[rag_api][proxy_url]/openapi.json    incomplete

Injected Status Hits Only The Next Requests
    Fail Requests    rag_api    status=503    count=2
    Request Should Fail With    ${SERVICES}[rag_api][proxy_url]${HEALTH}    status 503
    Request Should Fail With    ${SERVICES}[rag_api][proxy_url]${HEALTH}    status 503
    Request Should Succeed    ${SERVICES}[rag_api][proxy_url]${HEALTH}

Slow First Byte Delays The Response
    Delay First Byte    rag_api    300ms
    ${probe}    Probe URL    ${SERVICES}[rag_api][proxy_url]${HEALTH}
    Should Be True    ${probe}[elapsed_ms] >= 290    First byte came after ${probe}[elapsed_ms] ms

Cut Off Service Refuses Through The Proxy
    ${fault}    Cut Off Service    rag_api
    Request Should Fail With    ${SERVICES}[rag_api][proxy_url]${HEALTH}    refused
    Remove Fault    ${fault}
    Request Should Succeed    ${SERVICES}[rag_api][proxy_url]${HEALTH}

Fault On The Redis Path Reaches The API
    [Documentation]    The API talks to Redis through the proxy, so a cut-off there shows in its health report.
    Cut Off Service    redis
    ${health}    Get RAG API Health    via=direct
    Should Not Be True    ${health}[json][components][health_redis]    Health still reports Redis up

Bad Fault Arguments Are Refused And Nothing Is Applied
    Run Keyword And Expect Error    latency=-0.2 s: use a non-negative time*    Add Latency    rag_api    -200ms
    Run Keyword And Expect Error    No service named 'nosuch'*    Stop Service    nosuch
    Run Keyword And Expect Error    status=42: use an HTTP status code*    Fail Requests    rag_api    status=42
    ${faults}    Faults In Place
    Should Be Empty    ${faults}


*** Keywords ***
Measure Response Times Through The Proxy
    [Documentation]    Five health calls to the RAG API through its fault proxy.
    ${times}    Measure Response Times    ${SERVICES}[rag_api][proxy_url]${HEALTH}    samples=5
    RETURN    ${times}

Response Through The Proxy Should Be Faster Than
    [Documentation]    Every one of five health calls through the proxy takes less than ``limit_ms``.
    [Arguments]    ${limit_ms}
    ${times}    Measure Response Times Through The Proxy
    Response Time Should Be Below    ${times}    max    ${limit_ms}

Remove All Faults And Wait For Health
    [Documentation]    Undoes this test's faults, proves none is left, and waits until the services answer again.
    Remove All Faults
    ${faults}    Faults In Place
    Should Be Empty    ${faults}
    Network Path Should Be Clean    rag_api
    Network Path Should Be Clean    redis
    Wait Until Service Is Healthy    rag_api    timeout=30s
    Wait Until Service Is Healthy    redis    timeout=30s
    Request Should Succeed    ${SERVICES}[rag_api][proxy_url]${HEALTH}
