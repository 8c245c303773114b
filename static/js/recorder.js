// Records the consultation from the interaction's page and streams it to
// Corti's streams websocket (API-NOTES, "Streams").
//
// The page never holds Corti's client secret: each socket gets a token the
// dashboard mints when it is needed (#recorder data-start-url, then the
// token_url it answers with). Order: consent, microphone, token, socket,
// `config`, CONFIG_ACCEPTED, then audio (audio/webm;codecs=opus, 250 ms slices
// from MediaRecorder). A dropped (or stalled) socket is reconnected with a
// fresh token while recording goes on into memory, up to data-buffer-seconds;
// each socket gets a whole WebM stream from its header on (a new
// MediaRecorder per socket), and what was kept is sent first, faster than
// real time but paced. Every sentence shown comes from #recorder-words;
// transcript text is put in as text, never as HTML.
//
// The recorder may appear after the page loaded (the page's live part is
// swapped in when Corti's answer comes): it is set up whenever it shows up.
(function () {
  "use strict";

  var MIME = "audio/webm;codecs=opus";
  var CHUNK_MS = 250;
  var CONFIG_TIMEOUT_MS = 10000;
  var END_TIMEOUT_MS = 10000;
  var ENDING_MAX_MS = 30000;
  var MAX_RECONNECTS = 8;
  var BACKOFF_MS = [500, 1000, 2000, 4000, 8000];
  var HEARTBEAT_MS = 30000;
  var RENEW_RETRY_MS = 15000;
  // A new socket counts as healthy (its reconnection attempts start over)
  // after this long.
  var HEALTHY_MS = 5000;
  // Kept slices go out up to four times faster than they were recorded.
  var DRAIN_MS = CHUNK_MS / 4;
  // About 32 kbit/s of Opus: more than ~12 s queued in the browser for 5 s
  // means the connection has stalled (a half-open socket never closes by
  // itself).
  var BYTES_PER_SECOND = 4000;
  var STALL_BYTES = 12 * BYTES_PER_SECOND;
  var STALL_MS = 5000;
  // Catching up sends no more while the browser holds this much for the socket.
  var LOW_WATER_BYTES = 2 * BYTES_PER_SECOND;

  function setUp(root) {
    if (root.dataset.ready) return;
    root.dataset.ready = "true";

    var BUFFER_SECONDS = parseInt(root.dataset.bufferSeconds, 10) || 60;
    // As long as the dashboard may wait for Corti's sign-in service.
    var REQUEST_TIMEOUT_MS = (parseInt(root.dataset.requestSeconds, 10) || 40) * 1000;
    var KEEP_TRANSCRIPT = root.dataset.keepTranscript === "1";

    function el(id) {
      return document.getElementById(id);
    }
    var form = el("recorder-form");
    var consent = el("recording-consent");
    var language = el("recording-language");
    var mode = el("recording-mode");
    var deviceField = el("recording-device-field");
    var devicePicker = el("recording-device");
    var startButton = el("record-start");
    var pauseButton = el("record-pause");
    var resumeButton = el("record-resume");
    var endButton = el("record-end");
    var panel = el("recorder-panel");
    var deviceName = el("recorder-device-name");
    var meter = el("recorder-level");
    var elapsedText = el("recorder-elapsed");
    var stateLine = el("recorder-state");
    var alertLine = el("recorder-alert");
    var output = el("recorder-output");
    var transcript = el("transcript");
    var transcriptEmpty = el("transcript-empty");
    var factsPart = el("facts-part");
    var factsList = el("facts");
    var unsupported = el("recorder-unsupported");

    function word(key, values) {
      var item = root.querySelector('#recorder-words [data-key="' + key + '"]');
      var text = item ? item.textContent.trim() : key;
      return text.replace(/%\((\w+)\)s/g, function (_, name) {
        return values && values[name] !== undefined ? String(values[name]) : "";
      });
    }

    function say(key, values) {
      stateLine.textContent = key ? word(key, values) : "";
    }

    function warn(text) {
      alertLine.textContent = text || "";
    }

    function clock(seconds) {
      var whole = Math.max(0, Math.round(seconds));
      var minutes = Math.floor(whole / 60);
      var rest = whole % 60;
      return minutes + ":" + (rest < 10 ? "0" : "") + rest;
    }

    function supported() {
      return !!(
        window.MediaRecorder &&
        typeof MediaRecorder.isTypeSupported === "function" &&
        MediaRecorder.isTypeSupported(MIME) &&
        navigator.mediaDevices &&
        navigator.mediaDevices.getUserMedia &&
        window.WebSocket
      );
    }

    // --- the one recording this page may have at a time ---------------------

    var s = null; // the session: see begin()

    function alive(session) {
      return !!session && session === s && !session.finished;
    }

    function showButtons(state) {
      startButton.hidden = state !== "idle" && state !== "starting";
      startButton.disabled = state !== "idle";
      pauseButton.hidden = state !== "recording";
      resumeButton.hidden = state !== "paused";
      endButton.hidden = state !== "recording" && state !== "paused";
      var locked = state !== "idle";
      consent.disabled = locked;
      language.disabled = locked;
      mode.disabled = locked;
      devicePicker.disabled = locked;
    }

    function focusOn(target) {
      // Keyboard users keep their place when the pressed button hides.
      if (target && !target.hidden) target.focus();
    }

    // A POST to the dashboard. Resolves with the JSON body of a 2xx answer;
    // rejects with {status, body} otherwise, including an answer that is not
    // the dashboard's JSON (a sign-in page after the session ended, a
    // captive portal): `signedOut` then says so.
    function post(url, fields, keepalive) {
      var data = new FormData();
      data.append("csrfmiddlewaretoken", form.elements.csrfmiddlewaretoken.value);
      Object.keys(fields).forEach(function (name) {
        if (fields[name] !== undefined && fields[name] !== null) data.append(name, fields[name]);
      });
      var abort = window.AbortController ? new AbortController() : null;
      var timer = abort ? setTimeout(function () { abort.abort(); }, REQUEST_TIMEOUT_MS) : null;
      return fetch(url, {
        method: "POST",
        body: data,
        credentials: "same-origin",
        redirect: "manual",
        keepalive: !!keepalive,
        signal: abort ? abort.signal : undefined,
        headers: { "X-Requested-With": "fetch" },
      }).then(
        function (response) {
          var json = (response.headers.get("Content-Type") || "").indexOf("application/json") === 0;
          if (!json) {
            clearTimeout(timer);
            // A sign-in page (a redirect, or a refused CSRF check): the session
            // ended. Anything else that is not our JSON (a proxy's 502 page)
            // may pass: try again later.
            var signedOut = response.type === "opaqueredirect" || response.status === 401 || response.status === 403;
            throw { status: signedOut ? response.status : 0, body: {}, signedOut: signedOut };
          }
          // The time limit covers the body too.
          return response.json().then(
            function (body) {
              clearTimeout(timer);
              if (!response.ok) throw { status: response.status, body: body || {} };
              return body;
            },
            function () {
              clearTimeout(timer);
              throw { status: 0, body: {} };
            }
          );
        },
        function () {
          clearTimeout(timer);
          throw { status: 0, body: {} };
        }
      );
    }

    function problemText(problem) {
      if (problem && problem.signedOut) return word(s && s.everAccepted ? "signed-out-later" : "signed-out");
      return (problem && problem.body && problem.body.error) || word("failed-request");
    }

    function seconds(session) {
      session = session || s;
      if (!session) return 0;
      var running = session.runningSince ? performance.now() - session.runningSince : 0;
      return (session.recordedMs + running) / 1000;
    }

    function report(session, event, extra) {
      if (!session || !session.reportUrl) return Promise.resolve();
      var fields = {
        event: event,
        seconds: seconds(session).toFixed(1),
        lost: session.lostSeconds.toFixed(1),
        reconnects: session.reconnects,
      };
      Object.keys(extra || {}).forEach(function (name) {
        fields[name] = extra[name];
      });
      var final = event !== "accepted" && event !== "progress";
      // keepalive (the report outlives a closing page) holds 64 KB at most:
      // not a long transcript.
      var keepalive = !fields.transcript;
      return post(session.reportUrl, fields, keepalive).catch(function (problem) {
        // The last word matters most: try it once more.
        if (final) return post(session.reportUrl, fields, keepalive);
        throw problem;
      }).then(function (answer) {
        if (event !== "progress") recordingsChanged();
        return answer;
      }, function (problem) {
        // Signed out meanwhile (another tab, someone else on this computer),
        // or no longer allowed: the dashboard would not keep this recording
        // on the record, so it stops now rather than at the next token.
        if (!final && alive(session) && refusedForGood(problem)) stoppedByDashboard(session, problem);
      });
    }

    // The page's table of recordings (#recordings) asks for itself again:
    // only after the dashboard answered (signed out, its request would take
    // the page to the sign-in form).
    function recordingsChanged() {
      document.body.dispatchEvent(new CustomEvent("recordings-changed"));
    }

    // --- start ----------------------------------------------------------------

    function openMicrophone() {
      var chosen = devicePicker.value;
      var audio = chosen ? { deviceId: { exact: chosen } } : true;
      return navigator.mediaDevices.getUserMedia({ audio: audio, video: false });
    }

    function micProblem(error) {
      var name = error && error.name;
      if (name === "NotAllowedError" || name === "SecurityError") return word("mic-denied");
      if (name === "NotFoundError" || name === "OverconstrainedError") return word("mic-missing");
      return word("mic-busy");
    }

    function listDevices(stream) {
      var track = stream.getAudioTracks()[0];
      deviceName.textContent = (track && track.label) || "";
      fillPicker(track && track.getSettings ? track.getSettings().deviceId : "");
    }

    // The microphones to choose from, once the browser names them (after
    // the site was allowed the microphone once); shown when there are several.
    function fillPicker(current) {
      if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) return;
      navigator.mediaDevices.enumerateDevices().then(function (devices) {
        var inputs = devices.filter(function (d) {
          return d.kind === "audioinput" && d.deviceId;
        });
        if (!inputs.length || !inputs[0].label) return;
        var chosen = current || devicePicker.value;
        devicePicker.textContent = "";
        inputs.forEach(function (d, index) {
          var option = document.createElement("option");
          option.value = d.deviceId;
          option.textContent = d.label || word("microphone-n", { n: index + 1 });
          if (d.deviceId === chosen) option.selected = true;
          devicePicker.appendChild(option);
        });
        deviceField.hidden = inputs.length < 2;
      });
    }

    function startMeter(session) {
      var Context = window.AudioContext || window.webkitAudioContext;
      if (!Context) return null;
      var context = new Context();
      var source = context.createMediaStreamSource(session.stream);
      var analyser = context.createAnalyser();
      analyser.fftSize = 1024;
      source.connect(analyser);
      var samples = new Uint8Array(analyser.fftSize);
      var timer = setInterval(function () {
        analyser.getByteTimeDomainData(samples);
        var sum = 0;
        for (var i = 0; i < samples.length; i++) {
          var v = (samples[i] - 128) / 128;
          sum += v * v;
        }
        meter.value = session.paused ? 0 : Math.min(1, Math.sqrt(sum / samples.length) * 3);
      }, 100);
      return {
        stop: function () {
          clearInterval(timer);
          meter.value = 0;
          context.close();
        },
      };
    }

    function showFieldError(code, text) {
      var target = el("recording-" + code + "-errors");
      var field = el("recording-" + code);
      if (!code || !target || !field) return false;
      target.textContent = "";
      var p = document.createElement("p");
      p.className = "error";
      p.textContent = text;
      target.appendChild(p);
      field.setAttribute("aria-invalid", "true");
      field.focus();
      return true;
    }

    function clearFieldErrors() {
      ["consent", "language", "mode"].forEach(function (code) {
        var target = el("recording-" + code + "-errors");
        var field = el("recording-" + code);
        if (target) target.textContent = "";
        if (field) field.removeAttribute("aria-invalid");
      });
    }

    function stopTracks(stream) {
      stream.getTracks().forEach(function (track) {
        track.stop();
      });
    }

    var starting = false;

    function start(event) {
      event.preventDefault();
      if (starting || (s && !s.finished)) return;
      clearFieldErrors();
      warn("");
      if (!consent.checked) {
        showFieldError("consent", word("consent"));
        return;
      }
      if (!supported()) {
        warn(word(window.isSecureContext === false ? "insecure" : "unsupported"));
        return;
      }
      starting = true;
      showButtons("starting");
      stateLine.focus();
      say("mic-asking");
      var fields = { consent: "on", language: language.value, mode: mode.value };
      var stream = null;
      function giveUp(text, problem) {
        starting = false;
        if (stream) stopTracks(stream);
        showButtons("idle");
        say("");
        // A refused token still leaves the recording on the record, failed.
        if (problem && problem.status && !problem.signedOut) recordingsChanged();
        var code = problem && problem.body && problem.body.code;
        if (!showFieldError(code, text)) {
          warn(text);
          focusOn(startButton);
        }
      }
      openMicrophone().then(
        function (opened) {
          stream = opened;
          listDevices(stream);
          say("token");
          post(root.dataset.startUrl, fields).then(
            function (grant) {
              starting = false;
              try {
                begin(stream, grant);
              } catch (error) {
                s = null;
                if (grant && grant.report_url) {
                  post(grant.report_url, { event: "failed", failure: "error" })
                    .then(recordingsChanged, function () {});
                }
                giveUp(word("failed-request"));
              }
            },
            function (problem) {
              giveUp(problemText(problem), problem);
            }
          );
        },
        function (error) {
          giveUp(micProblem(error));
        }
      );
    }

    function begin(stream, grant) {
      var configuration = grant.configuration;
      if (!grant.url || !isFinite(grant.expires_in) || !configuration || !configuration.configuration) {
        throw new Error("grant");
      }
      var session = (s = {
        stream: stream,
        url: grant.url,
        expiresAt: Date.now() + grant.expires_in * 1000,
        reportUrl: grant.report_url,
        tokenUrl: grant.token_url,
        configuration: JSON.stringify(configuration),
        facts: configuration.configuration.mode.type === "facts",
        socket: null,
        socketSeq: 0,
        accepted: false,
        everAccepted: false,
        recorder: null,
        recorderSent: false,
        streamOffset: 0,
        buffer: [],
        bufferedMs: 0,
        lostSeconds: 0,
        reconnects: 0,
        attempts: 0,
        paused: false,
        ending: false,
        endSent: false,
        finished: false,
        recordedMs: 0,
        runningSince: 0,
        segments: {},
        factsSeen: {},
        timers: {},
      });
      panel.hidden = false;
      output.hidden = false;
      factsPart.hidden = !session.facts;
      transcript.textContent = "";
      factsList.textContent = "";
      transcriptEmpty.hidden = false;
      elapsedText.textContent = clock(0);
      session.meter = startMeter(session);
      stream.getAudioTracks().forEach(function (track) {
        track.addEventListener("ended", function () {
          if (!alive(session) || session.ending) return;
          if (!session.everAccepted) {
            finish(session, "mic-lost", "microphone_lost");
            return;
          }
          // End properly: what was recorded goes, then `end`.
          session.micLost = true;
          end();
        });
      });
      scheduleRenewal(session);
      connect(session);
    }

    // --- tokens ---------------------------------------------------------------

    function scheduleRenewal(session, wait) {
      clearTimeout(session.timers.renew);
      if (wait === undefined) {
        var left = session.expiresAt - Date.now();
        // A minute before it expires (halfway through a short one).
        wait = left > 120000 ? left - 60000 : left / 2;
      }
      if (!isFinite(wait) || wait < 1000) wait = 1000;
      session.timers.renew = setTimeout(function () {
        if (!alive(session)) return;
        freshToken(session, "renew").catch(function (problem) {
          if (!alive(session)) return;
          if (refusedForGood(problem)) stoppedByDashboard(session, problem);
          else scheduleRenewal(session, RENEW_RETRY_MS);
        });
      }, wait);
    }

    // The dashboard said no for good (the recording was closed, the user may
    // not record it any more): not worth asking again.
    function refusedForGood(problem) {
      return !!problem && (problem.status === 403 || problem.status === 409 || problem.signedOut);
    }

    // Its last word: a recording the dashboard had closed after a silence
    // gets what was recorded (the reason stays the dashboard's); signed out or
    // no longer allowed, the dashboard has already said why, and would refuse
    // the word anyway.
    function stoppedByDashboard(session, problem) {
      var closed = problem && problem.status === 409;
      if (!closed) session.noLastWord = true;
      finish(session, "stopped", closed ? "page_closed" : "error", { reason: problemText(problem) });
    }

    function freshToken(session, purpose) {
      return post(session.tokenUrl, { purpose: purpose }).then(function (body) {
        if (!alive(session)) throw { status: 0, body: {} };
        if (!body.url || !isFinite(body.expires_in)) throw { status: 0, body: {} };
        session.url = body.url;
        session.expiresAt = Date.now() + body.expires_in * 1000;
        scheduleRenewal(session);
        return session.url;
      });
    }

    // --- the socket -----------------------------------------------------------

    function connect(session) {
      if (!alive(session)) return;
      if (!session.everAccepted) say("connecting");
      var socket;
      try {
        socket = new WebSocket(session.url);
      } catch (error) {
        socketGone(session);
        return;
      }
      session.socket = socket;
      session.socketSeq += 1;
      session.accepted = false;
      socket.binaryType = "arraybuffer";
      session.timers.config = setTimeout(function () {
        if (!alive(session) || session.socket !== socket || session.accepted) return;
        if (!session.everAccepted) {
          finish(session, "config-timeout", "config_timeout");
        } else {
          drop(session, socket);
        }
      }, CONFIG_TIMEOUT_MS);
      socket.addEventListener("open", function () {
        if (!alive(session) || session.socket !== socket) return;
        if (!session.everAccepted) say("config-wait");
        socket.send(session.configuration);
      });
      socket.addEventListener("message", function (event) {
        if (!alive(session) || session.socket !== socket || typeof event.data !== "string") return;
        var message;
        try {
          message = JSON.parse(event.data);
        } catch (error) {
          return;
        }
        handle(session, socket, message);
      });
      socket.addEventListener("close", function () {
        if (!alive(session) || session.socket !== socket) return;
        clearTimeout(session.timers.config);
        session.socket = null;
        // What the browser still held for it never left.
        session.lostSeconds += socket.bufferedAmount / BYTES_PER_SECOND;
        socketGone(session);
      });
    }

    // Give up on a socket that is still open (stalled, or refused settings on
    // a reconnection) and carry on as after a drop.
    function drop(session, socket) {
      session.socket = null;
      session.lostSeconds += socket.bufferedAmount / BYTES_PER_SECOND;
      clearTimeout(session.timers.config);
      try {
        socket.close();
      } catch (error) {
        // already closing
      }
      socketGone(session);
    }

    function handle(session, socket, message) {
      var type = message && message.type;
      if (type === "CONFIG_ACCEPTED" || type === "CONFIG_ALREADY_RECEIVED") {
        clearTimeout(session.timers.config);
        if (!session.accepted) accepted(session);
      } else if (type === "CONFIG_DENIED" || type === "CONFIG_MISSING" || type === "CONFIG_NOT_PROVIDED") {
        var reason = message.reason || type;
        if (!session.everAccepted) {
          finish(session, "config-denied", "config_denied", { reason: reason });
        } else {
          warn(word("config-denied-later", { reason: reason }));
          drop(session, socket);
        }
      } else if (type === "CONFIG_TIMEOUT") {
        if (!session.everAccepted) finish(session, "config-timeout", "config_timeout");
      } else if (type === "transcript") {
        showTranscript(session, message.data);
      } else if (type === "facts") {
        showFacts(session, message.fact);
      } else if (type === "ENDED") {
        if (session.endSent) ended(session, true);
      } else if (type === "error") {
        var detail = message.error || {};
        warn(word("corti-error", { reason: detail.details || detail.title || message.reason || "" }));
      }
      // Anything else (usage, flushed, audio events, types added later) is
      // ignored, as Corti's change policy asks.
    }

    function accepted(session) {
      session.accepted = true;
      var socket = session.socket;
      clearTimeout(session.timers.healthy);
      session.timers.healthy = setTimeout(function () {
        if (alive(session) && session.socket === socket) session.attempts = 0;
      }, HEALTHY_MS);
      if (!session.everAccepted) {
        session.everAccepted = true;
        report(session, "accepted");
        newRecorder(session);
        session.socketOffset = session.streamOffset;
        session.runningSince = performance.now();
        clocks(session);
        showButtons("recording");
        focusOn(pauseButton);
        say("recording");
        return;
      }
      // After a reconnection: what was kept meanwhile goes first, in order;
      // this socket's times count from where its stream began.
      session.socketOffset = session.streamOffset;
      session.reconnects += 1;
      session.keptToSend = session.bufferedMs / 1000;
      say(session.ending ? "ending" : session.paused ? "paused" : "recording");
      warn(word("reconnecting-sending", { seconds: session.keptToSend.toFixed(1) }) + (session.lostNote ? " " + session.lostNote : ""));
      report(session, "progress");
      drain(session);
    }

    function socketGone(session) {
      if (!alive(session)) return;
      if (!session.everAccepted) {
        finish(session, "socket-failed", "socket_failed");
        return;
      }
      if (session.endSent) {
        // Closed after `end` without ENDED: what Corti got is not confirmed.
        ended(session, false);
        return;
      }
      clearInterval(session.timers.drain);
      session.timers.drain = null;
      clearTimeout(session.timers.healthy);
      // The next socket needs a whole WebM stream, from its header on. A
      // recorder whose stream already went (in part) to the lost socket is
      // replaced, and what is kept of its stream (it has no header) is lost.
      // One that sent nothing yet keeps filling the buffer (its header is in
      // there). After End nothing new is recorded.
      if (session.recorderSent) {
        forget(session);
        if (session.ending) retire(session);
        else restartRecorder(session);
      }
      scheduleReconnect(session);
    }

    function scheduleReconnect(session) {
      session.attempts += 1;
      if (session.attempts > MAX_RECONNECTS) {
        finish(session, "reconnect-failed", "reconnect_failed", { n: MAX_RECONNECTS });
        return;
      }
      say(session.ending ? "ending" : session.paused ? "dropped-paused" : "dropped", { n: session.attempts });
      var wait = BACKOFF_MS[Math.min(session.attempts - 1, BACKOFF_MS.length - 1)];
      session.timers.reconnect = setTimeout(function () {
        reconnect(session);
      }, wait);
    }

    function reconnectNow(session) {
      clearTimeout(session.timers.reconnect);
      if (session.socket || session.reconnecting) return;
      session.attempts += 1;
      reconnect(session);
    }

    function reconnect(session) {
      if (!alive(session) || session.reconnecting) return;
      session.reconnecting = true;
      freshToken(session, "reconnect").then(
        function () {
          session.reconnecting = false;
          connect(session);
        },
        function (problem) {
          session.reconnecting = false;
          if (!alive(session)) return;
          if (refusedForGood(problem)) {
            stoppedByDashboard(session, problem);
            return;
          }
          // The dashboard is unreachable: the token held may still be valid.
          if (Date.now() < session.expiresAt - 5000) connect(session);
          else scheduleReconnect(session);
        }
      );
    }

    // --- audio ----------------------------------------------------------------

    function newRecorder(session) {
      var recorder;
      try {
        recorder = new MediaRecorder(session.stream, { mimeType: MIME, audioBitsPerSecond: 32000 });
        recorder.start(CHUNK_MS);
      } catch (error) {
        // The microphone's stream is gone (its tracks ended).
        session.recorder = null;
        setTimeout(function () {
          finish(session, "mic-lost", "microphone_lost");
        }, 0);
        return;
      }
      recorder.addEventListener("dataavailable", function (event) {
        if (!alive(session) || !event.data || !event.data.size) return;
        slice(session, recorder, event.data);
      });
      // Its last slice has come (state turns "inactive" before it does).
      recorder.addEventListener("stop", function () {
        recorder.stopped = true;
        if (alive(session) && session.recorder === recorder && session.ending) drain(session);
      });
      session.recorder = recorder;
      session.recorderSent = false;
      // Corti's times in this stream count from here.
      session.streamOffset = seconds(session);
      if (session.paused) recorder.pause();
    }

    // The recorder's stream goes nowhere more: its slices still to come
    // are lost (counted as they come).
    function retire(session) {
      var old = session.recorder;
      session.recorder = null;
      if (!old) return;
      old.retired = true;
      if (old.state !== "inactive") old.stop();
    }

    function restartRecorder(session) {
      retire(session);
      newRecorder(session);
    }

    // Everything of the current stream is out (or there is none): `end` may follow.
    function streamDone(session) {
      return !session.recorder || !!session.recorder.stopped;
    }

    function open(session) {
      var socket = session.socket;
      return !!socket && session.accepted && socket.readyState === WebSocket.OPEN;
    }

    function slice(session, recorder, blob) {
      if (recorder !== session.recorder || session.endSent) {
        // A retired stream's slice, or one after `end`: it reaches no one.
        if (recorder.retired || session.endSent) session.lostSeconds += CHUNK_MS / 1000;
        return;
      }
      if (open(session) && session.recorderSent && stalled(session)) {
        // The stalled socket took the start of this stream: this slice has
        // no header to go with on the next one.
        session.lostSeconds += CHUNK_MS / 1000;
        return;
      }
      if (open(session) && !session.buffer.length && !congested(session)) {
        session.socket.send(blob);
        session.recorderSent = true;
        return;
      }
      keep(session, blob);
      // A background tab's timers may run only once a second: when the
      // drain's timer has fallen behind, the new slice takes kept ones along.
      if (open(session) && performance.now() - (session.lastPump || 0) > 4 * DRAIN_MS) {
        pump(session, 4);
      }
    }

    // What is kept and can no longer be sent is lost.
    function forget(session) {
      if (!session.bufferedMs) return;
      session.lostSeconds += session.bufferedMs / 1000;
      session.buffer = [];
      session.bufferedMs = 0;
      session.lostNote = word("lost-total", { seconds: session.lostSeconds.toFixed(0) });
    }

    function keep(session, blob) {
      session.buffer.push(blob);
      session.bufferedMs += CHUNK_MS;
      if (session.bufferedMs <= BUFFER_SECONDS * 1000) return;
      // More than the limit kept. A WebM stream cannot lose its middle: drop
      // what was kept and start a new stream, so the sound from now on is
      // kept (unless End was pressed: then nothing new is recorded).
      session.lostSeconds += session.bufferedMs / 1000;
      session.buffer = [];
      session.bufferedMs = 0;
      session.lostNote = word("lost", { limit: BUFFER_SECONDS, seconds: session.lostSeconds.toFixed(0) });
      warn(session.lostNote);
      report(session, "progress");
      if (session.ending) {
        // Nothing new is recorded after End; the rest of this stream has no
        // header to go with it.
        retire(session);
      } else {
        restartRecorder(session);
      }
      // A socket that got the start of the dropped stream cannot take the
      // new one: reconnect.
      if (open(session)) drop(session, session.socket);
    }

    // The browser holds more than a few slices for the socket: send no more
    // until it has taken them (catching up never outruns the link).
    function congested(session) {
      return !!session.socket && session.socket.bufferedAmount > LOW_WATER_BYTES;
    }

    // A socket whose browser-side queue stays full has stalled: what is
    // queued there is lost; reconnect.
    function stalled(session) {
      var socket = session.socket;
      if (!socket || socket.bufferedAmount <= STALL_BYTES) {
        session.fullSince = 0;
        return false;
      }
      var now = performance.now();
      if (!session.fullSince) session.fullSince = now;
      if (now - session.fullSince < STALL_MS) return false;
      session.fullSince = 0;
      warn(word("stalled", { seconds: (socket.bufferedAmount / BYTES_PER_SECOND).toFixed(0) }));
      drop(session, socket);
      return true;
    }

    // Send up to `count` kept slices, in order; once all went (and the
    // recorder has stopped, when ending), `end`.
    function pump(session, count) {
      session.lastPump = performance.now();
      while (count-- > 0 && session.buffer.length && open(session) && !congested(session)) {
        session.socket.send(session.buffer.shift());
        session.bufferedMs -= CHUNK_MS;
        session.recorderSent = true;
      }
      if (session.buffer.length) {
        if (open(session) && session.recorderSent) stalled(session);
        return;
      }
      if (!open(session)) return;
      clearInterval(session.timers.drain);
      session.timers.drain = null;
      if (session.keptToSend) {
        warn(word("reconnected", { seconds: session.keptToSend.toFixed(1) }) + (session.lostNote ? " " + session.lostNote : ""));
        session.keptToSend = 0;
        session.lostNote = "";
      }
      if (session.ending && streamDone(session)) sendEnd(session);
    }

    // What was kept goes out four times faster than it was recorded (one
    // slice every DRAIN_MS), as fast as the link takes it.
    function drain(session) {
      if (session.timers.drain) return;
      session.timers.drain = setInterval(function () {
        if (!alive(session) || !open(session)) {
          clearInterval(session.timers.drain);
          session.timers.drain = null;
          return;
        }
        pump(session, 1);
      }, DRAIN_MS);
      pump(session, 1);
    }

    function clocks(session) {
      clearInterval(session.timers.elapsed);
      session.timers.elapsed = setInterval(function () {
        if (alive(session)) elapsedText.textContent = clock(seconds(session));
      }, 500);
      // Still here: the record shows the recording as under way only while
      // the page says so (a closed tab goes quiet).
      clearInterval(session.timers.heartbeat);
      session.timers.heartbeat = setInterval(function () {
        if (alive(session)) report(session, "progress");
      }, HEARTBEAT_MS);
    }

    function pause() {
      var session = s;
      if (!alive(session) || session.paused || session.ending || !session.recorder) return;
      session.paused = true;
      session.recorder.pause();
      session.recordedMs += performance.now() - session.runningSince;
      session.runningSince = 0;
      showButtons("paused");
      focusOn(resumeButton);
      say("paused");
    }

    function resume() {
      var session = s;
      if (!alive(session) || !session.paused || session.ending || !session.recorder) return;
      session.paused = false;
      session.recorder.resume();
      session.runningSince = performance.now();
      showButtons("recording");
      focusOn(pauseButton);
      say("recording");
    }

    function end() {
      var session = s;
      if (!alive(session) || session.ending) return;
      session.ending = true;
      if (session.runningSince) {
        session.recordedMs += performance.now() - session.runningSince;
        session.runningSince = 0;
      }
      showButtons("ending");
      stateLine.focus();
      say("ending");
      // The recorder's last slice comes with its stop; `end` follows what was
      // kept. Disconnected: reconnect at once to deliver it.
      if (session.recorder && session.recorder.state !== "inactive") session.recorder.stop();
      else drain(session);
      if (!session.socket) reconnectNow(session);
      session.timers.ending = setTimeout(function () {
        if (!alive(session)) return;
        if (open(session) && !session.endSent) {
          // Still connected, still catching up: what is left goes now, then
          // `end` (and its own 10 s for the answer).
          retire(session);
          while (session.buffer.length) {
            session.socket.send(session.buffer.shift());
            session.bufferedMs -= CHUNK_MS;
          }
          sendEnd(session);
          return;
        }
        ended(session, false);
      }, ENDING_MAX_MS);
    }

    function sendEnd(session) {
      if (!open(session) || session.endSent) return;
      session.endSent = true;
      session.socket.send(JSON.stringify({ type: "end" }));
      clearTimeout(session.timers.ending);
      session.timers.ending = setTimeout(function () {
        if (alive(session)) ended(session, false);
      }, END_TIMEOUT_MS);
    }

    function ended(session, confirmed) {
      if (!session.endSent) {
        // End was pressed, but Corti could not be reached to hear it.
        finish(session, "end-unreached", "reconnect_failed");
      } else if (session.micLost) {
        finish(session, "mic-lost", confirmed ? "microphone_lost" : "ended_without_answer", {}, true);
      } else if (confirmed) {
        finish(session, "ended", "", {}, true);
      } else {
        finish(session, "ended-no-answer", "ended_without_answer", {}, true);
      }
    }

    // Stop everything; keep on the record how it went.
    function finish(session, key, failure, values, endedNormally) {
      if (!alive(session)) return;
      session.finished = true;
      values = values || {};
      Object.keys(session.timers).forEach(function (name) {
        clearTimeout(session.timers[name]);
        clearInterval(session.timers[name]);
      });
      if (session.runningSince) {
        session.recordedMs += performance.now() - session.runningSince;
        session.runningSince = 0;
      }
      // Whatever is still kept here never reached Corti.
      var undelivered = session.bufferedMs / 1000;
      session.lostSeconds += undelivered;
      session.buffer = [];
      session.bufferedMs = 0;
      var time = clock(seconds(session));
      if (!values.time) values.time = time;
      if (session.recorder && session.recorder.state !== "inactive") session.recorder.stop();
      if (session.meter) session.meter.stop();
      stopTracks(session.stream);
      if (session.socket && session.socket.readyState <= WebSocket.OPEN) session.socket.close();
      elapsedText.textContent = time;
      var extra = { failure: failure };
      if (KEEP_TRANSCRIPT) extra.transcript = JSON.stringify(kept(session));
      // Never accepted: nothing was recorded. Accepted, then stopped by a
      // fault: interrupted, with what was recorded until then.
      var event = endedNormally ? "ended" : session.everAccepted ? "interrupted" : "failed";
      if (!session.noLastWord) report(session, event, extra);
      var lost = session.lostSeconds >= 0.5 ? " " + word("lost-total", { seconds: session.lostSeconds.toFixed(0) }) : "";
      if (endedNormally && !failure) {
        say(key, values);
        if (lost) warn(lost.trim());
      } else {
        say("");
        warn(word(key, values) + lost);
      }
      // A new recording is a new consent.
      consent.checked = false;
      showButtons("idle");
      focusOn(startButton);
    }

    function kept(session) {
      var segments = Object.keys(session.segments)
        .map(function (id) {
          return session.segments[id];
        })
        .filter(function (seg) {
          return seg.final;
        });
      var facts = Object.keys(session.factsSeen).map(function (id) {
        return session.factsSeen[id];
      });
      return { segments: segments, facts: facts };
    }

    // --- what Corti says back -------------------------------------------------

    function showTranscript(session, items) {
      if (!Array.isArray(items)) return;
      items.forEach(function (item) {
        if (!item || typeof item.transcript !== "string") return;
        // Ids and times are the socket's own: a reconnection starts them over.
        var key = session.socketSeq + ":" + String(item.id || Object.keys(session.segments).length);
        var line = transcript.querySelector('li[data-key="' + CSS.escape(key) + '"]');
        if (!line) {
          line = document.createElement("li");
          line.dataset.key = key;
          ["speaker", "when", "words"].forEach(function (name) {
            var part = document.createElement("span");
            part.className = name;
            line.appendChild(part);
          });
          transcript.appendChild(line);
        }
        var speaker = typeof item.speakerId === "number" && item.speakerId >= 0 ? item.speakerId + 1 : 1;
        var time = item.time || {};
        var offset = session.socketOffset || 0;
        var start = typeof time.start === "number" ? time.start + offset : null;
        var stop = typeof time.end === "number" ? time.end + offset : null;
        line.querySelector(".speaker").textContent = word("speaker", { n: speaker });
        line.querySelector(".when").textContent = start === null ? "" : clock(start) + (stop === null ? "" : "\u2013" + clock(stop));
        line.querySelector(".words").textContent = item.transcript;
        line.classList.toggle("interim", !item.final);
        session.segments[key] = {
          text: item.transcript,
          participant: word("speaker", { n: speaker }),
          start: start,
          final: !!item.final,
        };
        transcriptEmpty.hidden = true;
        transcript.scrollTop = transcript.scrollHeight;
      });
    }

    function showFacts(session, items) {
      if (!Array.isArray(items)) return;
      items.forEach(function (item) {
        if (!item || typeof item.text !== "string") return;
        var id = String(item.id || item.text);
        var existing = factsList.querySelector('li[data-key="' + CSS.escape(id) + '"]');
        if (item.isDiscarded) {
          if (existing) existing.remove();
          delete session.factsSeen[id];
          return;
        }
        var line = existing || document.createElement("li");
        line.dataset.key = id;
        line.textContent = item.text;
        if (item.group) {
          var group = document.createElement("span");
          group.className = "muted";
          group.textContent = " (" + item.group + ")";
          line.appendChild(group);
        }
        if (!existing) factsList.appendChild(line);
        session.factsSeen[id] = { text: item.text, group: item.group || "" };
      });
    }

    // --- wiring ---------------------------------------------------------------

    if (supported()) {
      startButton.disabled = false;
      fillPicker("");
    } else {
      unsupported.textContent = word(window.isSecureContext === false ? "insecure" : "unsupported");
      unsupported.hidden = false;
      startButton.disabled = true;
    }
    form.addEventListener("submit", start);
    pauseButton.addEventListener("click", pause);
    resumeButton.addEventListener("click", resume);
    endButton.addEventListener("click", end);
    consent.addEventListener("change", function () {
      if (consent.checked) clearFieldErrors();
    });

    // A swap of the page took the recorder away: stop, do not record blind.
    document.addEventListener("htmx:afterSettle", function () {
      if (alive(s) && !document.contains(root)) finish(s, "stopped", "error", { reason: "" });
    });

    // A page opened in another tab (perhaps the sign-in page after a sign-out,
    // or someone else's first page): ask the dashboard now whether this
    // recording is still this session's, instead of at the next heartbeat.
    // At most one ask every 2 s; one that comes sooner waits its turn (a
    // sign-out right after another page opened must not go unasked).
    if (window.BroadcastChannel) {
      var lastAsked = 0;
      var askTimer = null;
      new BroadcastChannel("intake-session").addEventListener("message", function () {
        if (!alive(s) || !s.everAccepted || askTimer) return;
        askTimer = setTimeout(function () {
          askTimer = null;
          if (!alive(s)) return;
          lastAsked = Date.now();
          report(s, "progress");
        }, Math.max(0, lastAsked + 2000 - Date.now()));
      });
    }

    window.addEventListener("beforeunload", function (event) {
      if (!starting && !alive(s)) return;
      event.preventDefault();
      event.returnValue = word("leave");
      return event.returnValue;
    });
    // A tab closed (or navigated away) mid-recording: say so on the record.
    window.addEventListener("pagehide", function () {
      var session = s;
      if (!alive(session) || !session.reportUrl) return;
      var data = new FormData();
      data.append("csrfmiddlewaretoken", form.elements.csrfmiddlewaretoken.value);
      data.append("event", session.everAccepted ? "interrupted" : "failed");
      data.append("failure", "page_closed");
      data.append("seconds", seconds(session).toFixed(1));
      data.append("lost", (session.lostSeconds + session.bufferedMs / 1000).toFixed(1));
      data.append("reconnects", String(session.reconnects));
      navigator.sendBeacon(session.reportUrl, data);
    });
  }

  function setUpAll() {
    var root = document.getElementById("recorder");
    if (root) setUp(root);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", setUpAll);
  } else {
    setUpAll();
  }
  // The live part swapped in a recorder (Corti's answer came while the page
  // was open); a preserved one is already set up.
  document.addEventListener("htmx:afterSettle", setUpAll);

  // "Copy stream URL with token": copy it straight away (the press still
  // counts as the user's gesture); the Copy button stays for a second try.
  document.addEventListener("htmx:afterSwap", function (event) {
    if (!event.detail.target || event.detail.target.id !== "stream-url-slot") return;
    var button = event.detail.target.querySelector("button[data-copy-now]");
    if (button) button.click();
  });
})();
