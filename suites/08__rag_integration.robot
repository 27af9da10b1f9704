*** Settings ***
Documentation    RAG integration: answers cite the documents their facts come from, retrieval can be
...              turned off, streamed and plain answers agree, the token limit holds, the query cache
...              is written once and serves repeats faster, document search ranks the right document
...              first, every query leaves one record with its request id, and answers stay right while
...              the cache breaker is open, which keeps the API from reading and writing its cache.
...
...              The facts come from ``${RAG_FACTS}`` (the target's own documents): the tests that need
...              one are tagged ``requires:rag-facts``; the others ask a question of their own.
...
...              Testbed defects this suite catches: ``wrong-sources``, ``max-tokens-ignored``,
...              ``cache-never-written``, ``cache-never-hit``, ``docs-search-misranks``,
...              ``queries-not-recorded``, ``cache-breaker-ignored``, ``cache-read-past-open-breaker``, ``use-rag-ignored``,
...              ``stream-cites-fewer-sources``, ``token-rate-per-ms``, ``no-request-id`` (see ``python -m testbed defects``).

Resource         ../resources/xnai.resource

Suite Setup      Open Target Sessions
Test Teardown    Remove All Faults
Test Timeout     ${TEST_TIMEOUTS}[functional]

Test Tags        rag    P2    destructive


*** Variables ***
${QUESTION}    How does the Caddy gateway route requests to the RAG API?
${PLANTED}     An answer the suite planted in the cache.


*** Test Cases ***
An Answer Cites The Document Its Facts Come From
    [Tags]    requires:rag-facts    catches:wrong-sources
    @{facts}    Get RAG Facts
    FOR    ${fact}    IN    @{facts}
        ${reply}    Ask The RAG API    ${fact}[question]
        List Should Contain Value    ${reply}[answer][sources]    ${fact}[source]
        ...    "${fact}[question]" does not cite ${fact}[source]
        Should Contain    ${reply}[answer][response]    ${fact}[answer_contains]
    END

Without Retrieval An Answer Cites No Source
    [Tags]    catches:use-rag-ignored
    ${reply}    Ask The RAG API    ${QUESTION}    use_rag=${False}
    Should Be Empty    ${reply}[answer][sources]    Sources cited although retrieval was off
    Should Not Be Empty    ${reply}[answer][response]
    ${stream}    Open Answer Stream    ${QUESTION}    use_rag=${False}
    Should Not Contain    ${stream}[types]    sources

Streamed And Plain Answers Agree
    [Tags]    catches:stream-cites-fewer-sources
    ${reply}    Ask The RAG API    ${QUESTION}
    ${stream}    Open Answer Stream    ${QUESTION}
    Stream Should Follow The XNAi Grammar    ${stream}
    Should Be Equal    ${stream}[text]    ${reply}[answer][response]    The streamed and plain answers differ
    Should Be Equal    ${stream}[sources]    ${reply}[answer][sources]    They cite different sources

An Answer's Figures Agree With Each Other
    [Documentation]    The contract's ``tokens_generated``, ``duration_ms`` and ``token_rate_tps`` of a
    ...    freshly generated answer: the rate is the tokens over the duration.
    [Tags]    catches:token-rate-per-ms
    ${reply}    Ask The RAG API    Figures of a fresh answer ${{ time.time() }}
    Answer Figures Should Agree    ${reply}

The Token Limit Is Honoured
    [Tags]    catches:max-tokens-ignored
    ${reply}    Ask The RAG API    ${QUESTION}    max_tokens=5
    Should Be True    0 < ${reply}[answer][tokens_generated] <= 5
    ...    ${reply}[answer][tokens_generated] tokens generated with max_tokens=5
    ${stream}    Open Answer Stream    ${QUESTION}    max_tokens=5
    Should Be True    0 < ${stream}[token_count] <= 5    ${stream}[token_count] tokens streamed with max_tokens=5

A Query Is Cached Once And Served Faster On Repeat
    [Documentation]    The first asking writes one cache entry; the repeat adds none and takes less than
    ...    half the time (the LLM is skipped).
    [Tags]    catches:cache-never-hit    catches:cache-never-written
    ${question}    Fresh Question
    ${before}    Count Redis Keys    ${QUERY_CACHE_PATTERN}
    ${first}    Ask The RAG API    ${question}
    ${written}    Count Redis Keys    ${QUERY_CACHE_PATTERN}
    Should Be Equal As Integers    ${written}    ${before + 1}    The first asking did not write one cache entry
    ${repeat}    Ask The RAG API    ${question}
    ${after}    Count Redis Keys    ${QUERY_CACHE_PATTERN}
    Should Be Equal As Integers    ${after}    ${written}    The repeat wrote the cache again
    Should Be Equal    ${repeat}[answer][response]    ${first}[answer][response]
    Should Be True    ${repeat}[seconds] < ${first}[seconds] / 2
    ...    The repeat took ${repeat}[seconds] s, the first ${first}[seconds] s: not served from the cache

Document Search Ranks The Right Document First
    [Tags]    requires:rag-facts    catches:docs-search-misranks
    @{facts}    Get RAG Facts
    FOR    ${fact}    IN    @{facts}
        ${results}    Search The Docs    ${fact}[question]
        Should Not Be Empty    ${results}    No document found for "${fact}[question]"
        Should Be Equal    ${results}[0][id]    ${fact}[source]    Wrong first document for "${fact}[question]"
        Search Results Should Follow The Contract    ${results}
    END

Every Query Leaves One Record With Its Request ID
    [Documentation]    The ``${QUERY_STREAM}`` stream grows by one entry per query request, naming the
    ...    request's id in ``${QUERY_RECORD_ID_FIELD}``.
    [Tags]    catches:queries-not-recorded    catches:no-request-id
    ${mark}    Mark Redis Stream    ${QUERY_STREAM}
    ${ids}    Ask Fresh Questions And Collect Their Request IDs    3
    ${recorded}    Redis Stream Entries Since    ${QUERY_STREAM}    ${mark}    field=${QUERY_RECORD_ID_FIELD}
    Lists Should Be Equal    ${recorded}    ${ids}    The query records do not match the requests

Answers Stay Right While The Cache Breaker Is Open
    [Documentation]    Degraded, not broken: with ``redis_cache`` open, a question is answered from the
    ...    documents, cites the right source, and nothing is written to the cache.
    [Tags]    requires:rag-facts    catches:cache-breaker-ignored    catches:wrong-sources
    ${fact}    First RAG Fact
    Force Circuit Breaker Open    redis_cache
    ${question}    Fresh Question    ${fact}[question]
    ${before}    Count Redis Keys    ${QUERY_CACHE_PATTERN}
    ${reply}    Ask The RAG API    ${question}
    List Should Contain Value    ${reply}[answer][sources]    ${fact}[source]
    ${after}    Count Redis Keys    ${QUERY_CACHE_PATTERN}
    Should Be Equal As Integers    ${after}    ${before}    The cache was written while its breaker was open
    [Teardown]    Reset Circuit Breaker    redis_cache

The Cache Is Not Read While Its Breaker Is Open
    [Documentation]    An answer planted in a question's cache entry is served while ``redis_cache`` is
    ...    closed (so the plant sits where the API reads) and not once the breaker is open: an open breaker
    ...    keeps the API off its cache for reads as well as writes.
    [Tags]    catches:cache-breaker-ignored    catches:cache-never-hit    catches:cache-read-past-open-breaker
    ${question}    Fresh Question
    ${known}    Redis Keys Matching    ${QUERY_CACHE_PATTERN}
    ${reply}    Ask The RAG API    ${question}
    Plant An Answer In The Cache
    ...    ${reply}[answer][response]
    ...    ${PLANTED}
    ...    ${QUERY_CACHE_PATTERN}
    ...    known=${known}
    ${cached}    Ask The RAG API    ${question}
    Should Be Equal    ${cached}[answer][response]    ${PLANTED}    The API did not read its cache entry
    Force Circuit Breaker Open    redis_cache
    ${uncached}    Ask The RAG API    ${question}
    Should Not Be Equal    ${uncached}[answer][response]    ${PLANTED}    The cache was read while its breaker was open
    [Teardown]    Close The Cache Breaker And Remove The Planted Answer


*** Keywords ***
Close The Cache Breaker And Remove The Planted Answer
    [Documentation]    Resets ``redis_cache`` and deletes the cache entry the test changed.
    Reset Circuit Breaker    redis_cache
    Remove The Planted Answers

First RAG Fact
    [Documentation]    The first of ``${RAG_FACTS}``: a question whose answer lives in a known document.
    @{facts}    Get RAG Facts
    RETURN    ${facts}[0]

Fresh Question
    [Documentation]    ``question`` made unique (never cached), same meaning.
    [Arguments]    ${question}=${QUESTION}
    ${suffix}    Evaluate    uuid.uuid4().hex[:8]    modules=uuid
    RETURN    ${question} (${suffix})

Ask Fresh Questions And Collect Their Request IDs
    [Documentation]    Asks ``count`` never-asked questions; returns their ``X-Request-ID`` values in order.
    [Arguments]    ${count}
    VAR    @{ids}    @{EMPTY}
    FOR    ${_}    IN RANGE    ${count}
        ${question}    Fresh Question
        ${reply}    Ask The RAG API    ${question}
        Append To List    ${ids}    ${reply}[request_id]
    END
    RETURN    ${ids}
