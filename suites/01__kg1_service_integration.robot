*** Settings ***
Documentation     KG-1: every service is discoverable, reachable and healthy, directly and through
...               the Caddy gateway, fast enough; the RAG API reaches Redis, the task service reaches
...               PostgreSQL, the UI streams answers over its WebSocket, the aggregate health report
...               covers the stack.
...
...               Seed success criteria: services discoverable, ports accessible, health endpoints
...               responding, request/response times < ${RESPONSE_TIME_BOUND_MS} ms, no connection refused.
...
...               Testbed defects this suite catches: ``gateway-drops-api-route``, ``slow-health``,
...               ``no-request-id``, ``health-tier-zero-based``, ``health-memory-zero``, ``health-ignores-redis``,
...               ``ui-drops-stream``, ``cache-never-written``, ``tasks-info-needs-token``, ``aggregate-omits-task-service``
...               (see ``python -m testbed defects``).

Library           RedisLibrary
Resource          ../resources/xnai.resource

Suite Setup       Open Target Sessions
Suite Teardown    Delete All Sessions
Test Timeout      ${TEST_TIMEOUTS}[kg1]

Test Tags         kg1    P0


*** Test Cases ***
Every Service Host Resolves
    Every Required Service Should Resolve

Every Service Port Accepts Connections
    Every Required Service Should Accept Connections

Every Service Answers Its Health Check
    [Tags]    catches:gateway-drops-api-route    catches:tasks-info-needs-token
    Every Required Service Should Answer Its Health Check

RAG API Is Healthy Directly
    [Tags]    catches:health-memory-zero    catches:health-tier-zero-based
    ${health}    Get RAG API Health    via=direct
    Health Report Should Be Complete    ${health}
    Health Status Should Be    ${health}    healthy

RAG API Is Healthy Through The Gateway
    [Tags]    catches:gateway-drops-api-route    catches:health-memory-zero    catches:health-tier-zero-based
    ${health}    Get RAG API Health    via=gateway
    Health Report Should Be Complete    ${health}
    Health Status Should Be    ${health}    healthy

Gateway Keeps The API Prefix
    [Documentation]    An unknown route under the API prefix is answered by the RAG API itself
    ...    (its JSON error body and request id), not by the gateway's catch-all.
    [Tags]    catches:gateway-drops-api-route    catches:no-request-id
    ${response}    Send API Request    GET    /no-such-route    status=404
    Response Should Carry A Request ID    ${response}
    Should Be Equal    ${response}[json][request_id]    ${response}[request_id]

Every API Response Carries A Request ID
    [Tags]    catches:no-request-id
    ${health}    Get RAG API Health    via=direct
    Response Should Carry A Request ID    ${health}
    ${answer}    Ask The RAG API    What does the Caddy gateway forward?    via=direct
    Response Should Carry A Request ID    ${answer}

Query Is Answered Through The Gateway
    [Tags]    catches:gateway-drops-api-route
    ${answer}    Ask The RAG API    How many failures open the rag_api circuit breaker?
    Answer Should Cite Sources    ${answer}

Health Calls To The RAG API Are Fast
    [Tags]    catches:slow-health
    ${url}    Service Health URL    rag_api
    ${times}    Measure Response Times    ${url}    samples=${RESPONSE_TIME_SAMPLES}    content_type=application/json
    Response Time Should Be Below    ${times}    p99    ${RESPONSE_TIME_BOUND_MS}

Health Calls Through The Gateway Are Fast
    [Tags]    catches:gateway-drops-api-route    catches:slow-health
    ${url}    Service Health URL    gateway
    ${times}    Measure Response Times    ${url}    samples=${RESPONSE_TIME_SAMPLES}    content_type=application/json
    Response Time Should Be Below    ${times}    p99    ${RESPONSE_TIME_BOUND_MS}

Redis Accepts The Configured Credentials
    [Documentation]    PING, then a write and a read back with RedisLibrary's keywords on the
    ...    connection the suite opened (the password never a keyword argument).
    Redis Should Answer Ping
    ${redis}    Get Redis Connection
    VAR    ${key}    xnai-qa:credentials-probe
    Set To Redis    ${redis}    ${key}    written by the suite    expire_time=60
    ${value}    Get From Redis    ${redis}    ${key}
    Should Be Equal    ${value}    written by the suite
    Delete From Redis    ${redis}    ${key}

Health Reports The Live Redis Connection
    [Documentation]    The health check really talks to Redis: it refreshes ``${HEALTH_CHECK_KEY}``
    ...    with its short expiry, so a report of Redis health is never a guess.
    [Tags]    catches:health-ignores-redis
    Delete Redis Key    ${HEALTH_CHECK_KEY}
    ${health}    Get RAG API Health    via=direct
    Should Be True    ${health}[json][components][health_redis]    Health reports Redis down
    Redis Key Should Exist    ${HEALTH_CHECK_KEY}
    Redis Key Should Expire Within    ${HEALTH_CHECK_KEY}    ${HEALTH_CHECK_KEY_TTL_S}

Aggregate Health Through The Gateway Covers The Stack
    [Documentation]    The seed's aggregate ``GET /health`` at the gateway names every service of the
    ...    stack (``${AGGREGATE_SERVICES}``), each with a status, and stamps the time.
    [Tags]    catches:aggregate-omits-task-service
    ${health}    Get Aggregate Health
    Aggregate Health Should Be Complete    ${health}    checked=${AGGREGATE_SERVICES}

Task Service Answers Through The Gateway
    [Tags]    requires:vikunja    requires:vikunja-gateway    catches:tasks-info-needs-token
    ${info}    Get Task Service Info    via=gateway
    Log    Task service ${info}[version]

A Query Writes Its Answer To The Redis Cache
    [Documentation]    API -> Redis: a fresh question through the gateway leaves one more ``query:*`` entry.
    [Tags]    catches:cache-never-written
    ${before}    Count Redis Keys    query:*
    Ask A Fresh Question
    ${after}    Count Redis Keys    query:*
    Should Be True    ${after} > ${before}    No cache entry was written (${before} before, ${after} after)

A Task Created Through The API Is Stored In PostgreSQL
    [Documentation]    Task service -> PostgreSQL: the row is in the task database, read there directly.
    [Tags]    requires:vikunja-db    requires:vikunja
    ${project}    Create Project
    ${task}    Create Task    ${project}    Check the stack integration
    Task Should Be Stored In The Database    ${task}

The Docs Site Serves Its Pages
    [Tags]    requires:mkdocs
    ${url}    Service Health URL    mkdocs
    ${page}    GET    ${url}    expected_status=200
    Should Contain    ${page.headers}[Content-Type]    text/html

A Question Through The UI WebSocket Is Answered In Streamed Tokens
    [Documentation]    UI -> API: the question goes the browser's way, over the Chainlit UI's Socket.IO
    ...    WebSocket behind the gateway's catch-all; the answer arrives token by token.
    [Tags]    requires:ui    catches:ui-drops-stream
    ${answer}    Ask Through The UI    What is the Caddy gateway?
    UI Answer Should Be Streamed    ${answer}    min_tokens=5
