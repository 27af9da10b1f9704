*** Settings ***
Documentation    KG-2 timing: the RAG API's breaker stays closed under the seed's gradual load (10, 50, then
...              100 requests per second) with its latency within target, and adds less than 2 ms per call.
...
...              These verdicts judge latency, so with pabot this suite runs after the ``#WAIT`` barrier,
...              beside no other suite (``suites/pabot-order.txt``): measured on this kind of machine, beside
...              the functional suites the gradual load's p99 rose from about 170 ms to 800 ms and the
...              overhead measurement could not resolve 2 ms.
...
...              Testbed defects this suite catches: ``breaker-counts-crowding-as-failure``, ``breaker-adds-20ms``
...              (see ``python -m testbed defects``).
...              Where the breaker never reaches Redis its tests skip, naming the one test that reports it.
Metadata         Machine    quiet

Resource         ../resources/breakers.resource

Suite Setup      Open Sessions And Name The Query URL
Test Setup       Reset The Breakers Of A Breaker Test
Test Teardown    Restore The LLM And The Breakers
Test Timeout     ${TEST_TIMEOUTS}[kg2_timing]

Test Tags        kg2    P0    destructive    slow


*** Test Cases ***
Breaker Stays Closed Under Gradual Load
    [Documentation]    The seed's scenario 1: 10, 50, then 100 requests per second; the breaker never
    ...    leaves closed, no request fails, and the latency of every stage is charted.
    [Tags]    load    catches:breaker-counts-crowding-as-failure
    ${timeline}    Start Breaker Timeline    ${BREAKER}
    ${result}    Run Stepped Load    ${QUERY_URL}    10/s:${BREAKER_LOAD_STAGE}    50/s:${BREAKER_LOAD_STAGE}
    ...    100/s:${BREAKER_LOAD_STAGE}    method=POST    json=${FRESH_QUERY}    name=gradual-load
    ${timeline}    Stop Breaker Timeline    ${timeline}
    Breaker Should Have Stayed Closed    ${timeline}
    Error Rate Should Be Below    ${result}    0.001
    Latency Should Be Below    ${result}    p99    ${QUERY_P99_MS}

Breaker Adds Less Than 2 ms Per Call
    [Documentation]    The p50 of one-token queries with the breaker minus the p50 without it is below
    ...    ``${BREAKER_OVERHEAD_MS}`` ms, and the measurement decides it (on a noisy machine it takes more
    ...    rounds until its interval clears the limit, within a bound).
    [Tags]    requires:breaker-bypass    catches:breaker-adds-20ms
    ${overhead}    Measure Breaker Overhead    ${BREAKER}    limit_ms=${BREAKER_OVERHEAD_MS}    samples=640
    ...    max_rounds=64
    Breaker Overhead Should Be Below    ${overhead}    ${BREAKER_OVERHEAD_MS}
