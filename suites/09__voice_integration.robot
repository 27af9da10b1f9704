*** Settings ***
Documentation    Voice: synthesised speech is a complete WAV of plausible length, a spoken command is
...              recognised word for word, a round trip stays within its latency bound, the wake word is
...              heard only when spoken, and a failing engine opens its breaker while queries still answer.
...
...              The stack runs voice inside its API and UI processes and publishes no voice endpoint:
...              where ``${VOICE_URL}`` is empty, or an engine is missing, the tests are SKIPPED with the
...              reason. The testbed's voice service runs eSpeak NG (synthesis) and PocketSphinx with the
...              assistant's command grammar (recognition).
...
...              Testbed defects this suite catches: ``tts-truncated-wav``, ``voice-breaker-never-opens``,
...              ``stt-slow`` (see ``python -m testbed defects``).

Resource         ../resources/xnai.resource

Suite Setup      Open Target Sessions
Test Setup       Voice Engines Should Be Available
Test Teardown    Remove All Faults
Test Timeout     ${TEST_TIMEOUTS}[functional]

Test Tags        voice    P3    requires:voice


*** Test Cases ***
Synthesised Speech Is A Valid WAV Of Plausible Duration
    [Tags]    catches:tts-truncated-wav
    ${speech}    Synthesise Speech    ${VOICE_COMMANDS}[0]
    Speech Should Be A Valid WAV    ${speech}

A Spoken Command Is Recognised Word For Word
    [Documentation]    Text -> speech -> text gives back every word, for each command.
    [Tags]    catches:tts-truncated-wav
    FOR    ${command}    IN    @{VOICE_COMMANDS}
        ${speech}    Synthesise Speech    ${command}
        ${heard}    Recognise Speech    ${speech}
        Recognised Words Should Be    ${heard}    ${command}
    END

A Voice Round Trip Is Within The Latency Bound
    [Tags]    catches:stt-slow
    ${speech}    Synthesise Speech    ${VOICE_COMMANDS}[0]
    ${heard}    Recognise Speech    ${speech}
    Voice Round Trip Should Be Within    ${speech}    ${heard}    ${VOICE_LATENCY_BOUND_MS}

The Wake Word Is Heard Only When Spoken
    [Tags]    catches:tts-truncated-wav
    ${with}    Synthesise Speech    ${VOICE_WAKE_WORD}, ${VOICE_COMMANDS}[0]
    ${without}    Synthesise Speech    ${VOICE_COMMANDS}[0]
    ${heard}    Recognise Speech    ${with}
    Should Be True    ${heard}[wake_word]    The wake word was not heard in "${heard}[text]"
    ${heard}    Recognise Speech    ${without}
    Should Not Be True    ${heard}[wake_word]    A wake word was heard in "${heard}[text]"

A Failing Synthesiser Opens Its Breaker And Queries Still Answer
    [Tags]    requires:voice-control    catches:voice-breaker-never-opens
    Fail The Voice Engine Until Its Breaker Opens    tts    voice_tts
    [Teardown]    Heal The Voice Engines

A Failing Recogniser Opens Its Breaker And Queries Still Answer
    [Tags]    requires:voice-control    catches:voice-breaker-never-opens
    Fail The Voice Engine Until Its Breaker Opens    stt    voice_stt
    [Teardown]    Heal The Voice Engines


*** Keywords ***
Fail The Voice Engine Until Its Breaker Opens
    [Documentation]    The engine fails on every call: after its breaker's threshold of refused calls the
    ...    breaker is open in Redis, calls are refused at once, and the RAG API still answers.
    [Arguments]    ${engine}    ${breaker}
    Make The Voice Engine Fail    ${engine}
    ${threshold}    Failure Threshold Of    ${breaker}
    FOR    ${_}    IN RANGE    ${threshold}
        Voice Call Should Be Refused    ${engine}
    END
    Wait Until Circuit Breaker Is    ${breaker}    open
    ${refused}    Voice Call Should Be Refused    ${engine}
    Should Contain    ${refused}[body]    circuit open
    Ask The RAG API    What does the Caddy gateway forward?

Heal The Voice Engines
    [Documentation]    Undoes the engine fault and clears both voice breakers.
    Remove All Faults
    Reset Circuit Breaker    voice_tts
    Reset Circuit Breaker    voice_stt
