*** Settings ***
Documentation    Faults with a ``duration`` keep their time, whatever the run, the monitor or the target does:
...              each is undone within 0.5 s of its time (``Wait For Timed Fault To End`` reads when), and
...              the log says when it was applied, due and undone. Then two scenarios a QA author wrote from
...              the documented keywords alone: Redis paused under load, and Redis slowed under a stream.
...
...              The testbed's health monitor keeps running meanwhile: it restarts Redis after three failed
...              checks and the RAG API after two, holding the testbed supervisor's lock while it does. The
...              undo of a pause never waits for that lock (it sends SIGCONT to the service's process group),
...              so a monitor restart cannot stretch a pause (measured before: a 5 s pause lasted 19 s).

Resource         ../resources/xnai.resource

Suite Setup      Open Target Sessions
Test Teardown    Remove All Faults And Wait For Health
Test Timeout     2 minutes

Test Tags        faults    destructive


*** Variables ***
${QUESTION}    How does the Caddy gateway route requests?
${LATE_S}      1


*** Test Cases ***
A Timed Pause Of Redis Ends On Time While The Monitor Watches
    ${load}    Start Query Load At 20 Per Second    8s
    ${fault}    Pause Service    redis    duration=2s
    ${times}    Wait For Timed Fault To End    ${fault}
    Should Be True    ${times}[late_s] <= 0.5    The pause was undone ${times}[late_s] s late
    Wait For Background Load    ${load}    fail_if_invalid=${False}

A Timed Stop Of The RAG API Ends On Time
    ${fault}    Stop Service    rag_api    grace=2s    duration=2s
    ${times}    Wait For Timed Fault To End    ${fault}
    Should Be True    ${times}[late_s] <= 0.5    The stop was undone ${times}[late_s] s late
    Wait Until Service Is Healthy    rag_api    timeout=30s

Holding The Monitor Keeps It From Restarting A Stopped Service
    [Documentation]    With the monitor's recovery actions held, a stopped Redis is seen unhealthy and
    ...    its restart is recorded as held, not taken: Redis stays down until the test restores it.
    Hold The Health Monitor's Recovery Actions
    Start Watching The Health Monitor
    Stop Service    redis
    ${held}    Wait For Recovery Action    redis    restart_held
    Should Be Equal As Integers    ${held}[failures]    3    The restart was held at the wrong failure count
    Service Should Refuse Connections    redis

Queries Answer Cleanly While Redis Is Paused And Health Recovers
    [Documentation]    Redis paused for 5 s under 20 queries per second: every query is answered, the API's
    ...    health reports Redis down meanwhile, and everything is healthy again within 30 s. The pause
    ...    may not outlive its time by more than ${LATE_S} s. The monitor's recovery actions are held: a
    ...    restart of the API it finds slow would be its own outage, not the one under test.
    Hold The Health Monitor's Recovery Actions
    ${load}    Start Query Load At 20 Per Second    8s
    ${fault}    Pause Service    redis    duration=5s
    Wait Until Keyword Succeeds    5s    0.2s    RAG API Health Should Report Redis Down
    ${times}    Wait For Timed Fault To End    ${fault}
    Should Be True    ${times}[late_s] <= ${LATE_S}    The pause outlived its time by ${times}[late_s] s
    ${result}    Wait For Background Load    ${load}    fail_if_invalid=${False}
    Error Rate Should Be Below    ${result}    0.001
    Wait Until Service Is Healthy    rag_api    timeout=30s
    Wait Until Keyword Succeeds    30s    0.5s    RAG API Health Should Report Redis Up

Streamed And Plain Answers Agree While Redis Is Slowed
    Add Latency    redis    100ms
    ${plain}    Ask The RAG API    ${QUESTION}    via=direct
    ${stream}    Open Answer Stream    ${QUESTION}    via=direct
    Stream Should Follow The XNAi Grammar    ${stream}
    Should Be Equal    ${stream}[text]    ${plain}[json][response]


*** Keywords ***
Start Query Load At 20 Per Second
    [Documentation]    Fresh questions to the RAG API's query path, 20 per second, in the background.
    [Arguments]    ${duration}
    VAR    &{body}    ${QUERY_FIELD}=paused redis probe {seq}
    ${load}    Start Load In Background    ${RAG_API_URL}${API_PREFIX}${QUERY_PATH}    rate=20/s
    ...    duration=${duration}    method=POST    json=${body}    name=queries-20-per-second
    RETURN    ${load}

RAG API Health Should Report Redis Down
    [Documentation]    The API's health body says Redis is not reachable (``components.health_redis`` false).
    ${health}    Get RAG API Health    via=direct
    Should Not Be True    ${health}[json][components][health_redis]    Health still reports Redis up

RAG API Health Should Report Redis Up
    [Documentation]    The API's health body says Redis answers (``components.health_redis`` true).
    ${health}    Get RAG API Health    via=direct
    Should Be True    ${health}[json][components][health_redis]    Health still reports Redis down

Remove All Faults And Wait For Health
    [Documentation]    Undoes this test's faults and waits until the RAG API and Redis answer again.
    Remove All Faults
    Wait Until Service Is Healthy    rag_api    timeout=30s
    Wait Until Service Is Healthy    redis    timeout=30s
