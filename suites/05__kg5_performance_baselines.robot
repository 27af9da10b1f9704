*** Settings ***
Documentation    KG-5: latency, throughput and memory of the query path under the seed's baseline and normal
...              load profiles (baseline 1 user at 1 req/s, normal 10 at 10), judged against the seed's
...              targets; a baseline established from three runs and compared with its tolerances; memory
...              that stays flat under repeated load. The peak and stress profiles and the capacity knee,
...              which saturate the machine, are in the suite ``Kg5 Peak And Capacity``.
...
...              Profiles, durations and bounds come from variables (``${LOAD_PROFILES}``: the seed's
...              minutes in the production profile, seconds in the fast one). Figures of every profile
...              are at the top of report.html and in ``performance/summary.json`` of the output folder.
...              Compare with an earlier run's baselines: ``--variable BASELINE_REFERENCE_DIR:<dir>``.
...
...              Testbed defects this suite catches: ``query-slow-path`` (against a clean reference
...              baseline), ``memory-grows-under-load`` (see ``python -m testbed defects``).

Resource         ../resources/xnai.resource

Suite Setup      Open Target Sessions
Test Teardown    Remove All Faults
Test Timeout     10 minutes

Test Tags        kg5    P1    load    slow


*** Test Cases ***
Baseline Is Established From Three Runs
    [Documentation]    The seed's procedure 1: the baseline profile three times after a cooldown, the mean
    ...    saved; the three runs must agree within the comparison tolerances.
    ${baseline}    Establish Baseline    baseline    runs=3    cooldown=${PROFILE_COOLDOWN}
    Should Be True    ${baseline}[p99_ms] < ${QUERY_P99_MS}

Query Latency Matches The Saved Baseline
    [Documentation]    The seed's procedure 2: a new run of the baseline profile against the saved
    ...    baseline: p50 within 10 %, p99 within 20 %, memory within 5 %, errors below 0.1 %.
    Wait Until Target Is Idle    rag_api    timeout=${PROFILE_COOLDOWN}
    ${now}    Run Load Profile    baseline
    Profile Should Match Baseline    ${now}

Baseline Profile Meets The Query Target
    ${result}    Run Load Profile    baseline
    Profile Should Meet Targets    ${result}

Normal Profile Meets The Query, Error And Memory Targets
    ${result}    Run Load Profile    normal
    Profile Should Meet Targets    ${result}    max_error_rate=0.001    max_memory_percent=94

Health Checks Stay Under 100 ms Under Normal Load
    [Documentation]    The normal profile's rate and users on fresh questions, in the background.
    ${load}    Start Normal Query Load
    ${url}    Service Health URL    gateway
    ${times}    Measure Response Times    ${url}    samples=${RESPONSE_TIME_SAMPLES}    content_type=application/json
    Wait For Background Load    ${load}
    Response Time Should Be Below    ${times}    p99    ${HEALTH_P99_MS}

Document Search Stays Under 300 ms At The Normal Rate
    ${result}    Run Load    ${GATEWAY_URL}${API_PREFIX}/docs/search?query=circuit+breaker&limit=5
    ...    rate=${LOAD_PROFILES}[normal][rate]    duration=${LOAD_PROFILES}[normal][duration]
    ...    max_in_flight=${LOAD_PROFILES}[normal][users]
    Error Rate Should Be Below    ${result}    0.001
    Latency Should Be Below    ${result}    p99    ${API_P99_MS}

Memory Stays Flat Under Repeated Normal Load
    [Documentation]    Rounds of normal load: the API's memory may not grow in every round (after two
    ...    warm-up rounds), the leak rule of psutil's own tests. Memory is judged, not latency, so a late
    ...    send schedule does not fail a round.
    Action Should Not Leak    rag_api    Run Load Profile    normal    duration=2s    record=${False}
    ...    fail_if_invalid=${False}
    ...    warmup=2    rounds=4    check=memory    min_growth_kb=${LEAK_MIN_GROWTH_KB}
    ...    max_slope_kb=${LEAK_MAX_SLOPE_KB}


*** Keywords ***
Start Normal Query Load
    [Documentation]    The normal profile's rate and users on fresh questions, in the background.
    ${load}    Start Load In Background    ${GATEWAY_URL}${API_PREFIX}${QUERY_PATH}
    ...    rate=${LOAD_PROFILES}[normal][rate]    duration=${LOAD_PROFILES}[normal][duration]
    ...    method=POST    json=${{ {$QUERY_FIELD: "Normal load question {seq}"} }}
    ...    max_in_flight=${LOAD_PROFILES}[normal][users]
    RETURN    ${load}
