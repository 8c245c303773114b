// Records the consultation from the interaction's page and streams it to
// Corti's streams websocket (API-NOTES, "Streams").
//
// The page never holds Corti's client secret: each socket gets a token the
// dashboard mints for this interaction only, at the moment it is needed
// (#recorder data-start-url, then the token_url it answers with). Order:
// consent, microphone, token, socket, `config`, CONFIG_ACCEPTED, then audio
// (audio/webm;codecs=opus, 250 ms chunks from MediaRecorder). A dropped socket
// is reconnected with a fresh token while recording goes on into memory (up
// to data-buffer-seconds; a new MediaRecorder, so the new socket gets a whole
// WebM stream from its header on). Every sentence shown comes from
// #recorder-words; transcript text is put in as text, never as HTML.
(function () {
  "use strict";

  var root = document.getElementById("recorder");
  if (!root) return;

  var MIME = "audio/webm;codecs=opus";
  var CHUNK_MS = 250;
  var CONFIG_TIMEOUT_MS = 10000;
  var END_TIMEOUT_MS = 10000;
  var MAX_RECONNECTS = 8;
  var HEARTBEAT_MS = 30000;
  var BACKOFF_MS = [500, 1000, 2000, 4000, 8000];
  var BUFFER_SECONDS = parseInt(root.dataset.bufferSeconds, 10) || 60;
  var KEEP_TRANSCRIPT = root.dataset.keepTranscript === "1";

  var form = document.getElementById("recorder-form");
  var consent = document.getElementById("recording-consent");
  var consentErrors = document.getElementById("recording-consent-errors");
  var language = document.getElementById("recording-language");
  var mode = document.getElementById("recording-mode");
  var deviceField = document.getElementById("recording-device-field");
  var devicePicker = document.getElementById("recording-device");
  var startButton = document.getElementById("record-start");
  var pauseButton = document.getElementById("record-pause");
  var resumeButton = document.getElementById("record-resume");
  var endButton = document.getElementById("record-end");
  var panel = document.getElementById("recorder-panel");
  var deviceName = document.getElementById("recorder-device-name");
  var meter = document.getElementById("recorder-level");
  var elapsedText = document.getElementById("recorder-elapsed");
  var stateLine = document.getElementById("recorder-state");
  var alertLine = document.getElementById("recorder-alert");
  var output = document.getElementById("recorder-output");
  var transcript = document.getElementById("transcript");
  var transcriptEmpty = document.getElementById("transcript-empty");
  var factsPart = document.getElementById("facts-part");
  var factsList = document.getElementById("facts");
  var unsupported = document.getElementById("recorder-unsupported");

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

  // --- the one recording this page may have ---------------------------------

  var s = null; // the session: see start()

  function active() {
    return !!s && !s.finished;
  }

  function showButtons(state) {
    startButton.hidden = state !== "idle";
    startButton.disabled = false;
    pauseButton.hidden = state !== "recording";
    resumeButton.hidden = state !== "paused";
    endButton.hidden = state !== "recording" && state !== "paused";
    var locked = state !== "idle";
    consent.disabled = locked;
    language.disabled = locked;
    mode.disabled = locked;
    devicePicker.disabled = locked;
  }

  function focusOn(button) {
    // Keyboard users keep their place when the pressed button hides.
    if (button && !button.hidden) button.focus();
  }

  function post(url, fields) {
    var data = new FormData();
    data.append("csrfmiddlewaretoken", form.elements.csrfmiddlewaretoken.value);
    Object.keys(fields).forEach(function (name) {
      if (fields[name] !== undefined && fields[name] !== null) data.append(name, fields[name]);
    });
    return fetch(url, {
      method: "POST",
      body: data,
      credentials: "same-origin",
      headers: { "X-Requested-With": "fetch" },
    }).then(function (response) {
      return response
        .json()
        .catch(function () {
          return {};
        })
        .then(function (body) {
          return { ok: response.ok, status: response.status, body: body };
        });
    });
  }

  function seconds() {
    if (!s) return 0;
    var running = s.runningSince ? performance.now() - s.runningSince : 0;
    return (s.recordedMs + running) / 1000;
  }

  function report(event, extra) {
    if (!s || !s.reportUrl) return Promise.resolve();
    var fields = {
      event: event,
      seconds: seconds().toFixed(1),
      lost: s.lostSeconds.toFixed(1),
      reconnects: s.reconnects,
    };
    Object.keys(extra || {}).forEach(function (name) {
      fields[name] = extra[name];
    });
    return post(s.reportUrl, fields).catch(function () {});
  }

  // --- start ------------------------------------------------------------------

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
    if (!navigator.mediaDevices.enumerateDevices) return;
    navigator.mediaDevices.enumerateDevices().then(function (devices) {
      var inputs = devices.filter(function (d) {
        return d.kind === "audioinput";
      });
      var current = track && track.getSettings ? track.getSettings().deviceId : "";
      devicePicker.textContent = "";
      inputs.forEach(function (d, index) {
        var option = document.createElement("option");
        option.value = d.deviceId;
        option.textContent = d.label || "Microphone " + (index + 1);
        if (d.deviceId === current) option.selected = true;
        devicePicker.appendChild(option);
      });
      deviceField.hidden = inputs.length < 2;
    });
  }

  function startMeter(stream) {
    var Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) return null;
    var context = new Context();
    var source = context.createMediaStreamSource(stream);
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
      meter.value = s && s.paused ? 0 : Math.min(1, Math.sqrt(sum / samples.length) * 3);
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
    var target = document.getElementById("recording-" + code + "-errors");
    var field = document.getElementById("recording-" + code);
    if (target && field) {
      target.textContent = "";
      var p = document.createElement("p");
      p.className = "error";
      p.textContent = text;
      target.appendChild(p);
      field.setAttribute("aria-invalid", "true");
      field.focus();
      return true;
    }
    return false;
  }

  function clearFieldErrors() {
    ["consent", "language", "mode"].forEach(function (code) {
      var target = document.getElementById("recording-" + code + "-errors");
      var field = document.getElementById("recording-" + code);
      if (target) target.textContent = "";
      if (field) field.removeAttribute("aria-invalid");
    });
  }

  function start(event) {
    event.preventDefault();
    if (active()) return;
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
    startButton.disabled = true;
    say("mic-asking");
    var formData = {
      consent: "on",
      language: language.value,
      mode: mode.value,
    };
    openMicrophone().then(
      function (stream) {
        listDevices(stream);
        say("token");
        post(root.dataset.startUrl, formData).then(
          function (answer) {
            if (!answer.ok) {
              stopTracks(stream);
              startButton.disabled = false;
              say("");
              var text = (answer.body && answer.body.error) || word("failed-request");
              if (!showFieldError(answer.body && answer.body.code, text)) warn(text);
              return;
            }
            begin(stream, answer.body);
          },
          function () {
            stopTracks(stream);
            startButton.disabled = false;
            say("");
            warn(word("failed-request"));
          }
        );
      },
      function (error) {
        startButton.disabled = false;
        say("");
        warn(micProblem(error));
      }
    );
  }

  function stopTracks(stream) {
    stream.getTracks().forEach(function (track) {
      track.stop();
    });
  }

  function begin(stream, grant) {
    s = {
      stream: stream,
      url: grant.url,
      expiresAt: Date.now() + grant.expires_in * 1000,
      reportUrl: grant.report_url,
      tokenUrl: grant.token_url,
      configuration: JSON.stringify(grant.configuration),
      facts: grant.configuration.configuration.mode.type === "facts",
      socket: null,
      accepted: false,
      everAccepted: false,
      recorder: null,
      buffer: [],
      bufferedMs: 0,
      lostSeconds: 0,
      reconnects: 0,
      attempts: 0,
      paused: false,
      ending: false,
      finished: false,
      recordedMs: 0,
      runningSince: 0,
      segments: {},
      factsSeen: {},
      timers: {},
    };
    panel.hidden = false;
    output.hidden = false;
    factsPart.hidden = !s.facts;
    transcript.textContent = "";
    factsList.textContent = "";
    transcriptEmpty.hidden = false;
    s.meter = startMeter(stream);
    stream.getAudioTracks().forEach(function (track) {
      track.addEventListener("ended", function () {
        if (active() && !s.ending) finish("mic-lost", "microphone_lost");
      });
    });
    showButtons("starting");
    scheduleRenewal();
    connect();
  }

  // --- tokens -----------------------------------------------------------------

  function scheduleRenewal() {
    clearTimeout(s.timers.renew);
    var left = s.expiresAt - Date.now();
    // Replace it a minute before it expires (halfway through a short one).
    var wait = Math.max(1000, left > 120000 ? left - 60000 : left / 2);
    s.timers.renew = setTimeout(function () {
      if (!active()) return;
      freshToken("renew").then(function () {}, function () {});
    }, wait);
  }

  function freshToken(purpose) {
    return post(s.tokenUrl, { purpose: purpose }).then(function (answer) {
      if (!answer.ok) throw answer;
      s.url = answer.body.url;
      s.expiresAt = Date.now() + answer.body.expires_in * 1000;
      scheduleRenewal();
      return s.url;
    });
  }

  // --- the socket -------------------------------------------------------------

  function connect() {
    say(s.everAccepted ? "dropped" : "connecting", { n: s.attempts });
    var socket;
    try {
      socket = new WebSocket(s.url);
    } catch (error) {
      socketGone();
      return;
    }
    s.socket = socket;
    s.accepted = false;
    socket.binaryType = "arraybuffer";
    s.timers.config = setTimeout(function () {
      if (s && s.socket === socket && !s.accepted) {
        configRefused("config-timeout", "config_timeout", {});
        socket.close();
      }
    }, CONFIG_TIMEOUT_MS);
    socket.addEventListener("open", function () {
      if (!s || s.socket !== socket) return;
      if (!s.everAccepted) say("config-wait");
      socket.send(s.configuration);
    });
    socket.addEventListener("message", function (event) {
      if (!s || s.socket !== socket || typeof event.data !== "string") return;
      var message;
      try {
        message = JSON.parse(event.data);
      } catch (error) {
        return;
      }
      handle(message, socket);
    });
    socket.addEventListener("close", function () {
      clearTimeout(s && s.timers.config);
      if (!s || s.socket !== socket) return;
      s.socket = null;
      socketGone();
    });
  }

  function handle(message, socket) {
    var type = message && message.type;
    if (type === "CONFIG_ACCEPTED" || type === "CONFIG_ALREADY_RECEIVED") {
      clearTimeout(s.timers.config);
      if (!s.accepted) accepted();
    } else if (type === "CONFIG_DENIED" || type === "CONFIG_MISSING" || type === "CONFIG_NOT_PROVIDED") {
      configRefused("config-denied", "config_denied", { reason: message.reason || type });
      socket.close();
    } else if (type === "CONFIG_TIMEOUT") {
      configRefused("config-timeout", "config_timeout", {});
    } else if (type === "transcript") {
      showTranscript(message.data);
    } else if (type === "facts") {
      showFacts(message.fact);
    } else if (type === "ENDED") {
      if (s.ending) ended(true);
    } else if (type === "error") {
      var detail = message.error || {};
      warn(word("corti-error", { reason: detail.details || detail.title || message.reason || "" }));
    }
    // Anything else (usage, flushed, audio events, types added later) is
    // ignored, as Corti's change policy asks.
  }

  function accepted() {
    s.accepted = true;
    s.attempts = 0;
    if (!s.everAccepted) {
      s.everAccepted = true;
      report("accepted");
      newRecorder();
      s.runningSince = performance.now();
      elapsedTimer();
      showButtons("recording");
      focusOn(pauseButton);
      say("recording");
      return;
    }
    // After a reconnection: what was kept meanwhile goes first, in order.
    var kept = s.bufferedMs / 1000;
    var chunks = s.buffer;
    s.buffer = [];
    s.bufferedMs = 0;
    chunks.forEach(function (chunk) {
      s.socket.send(chunk.data);
    });
    if (chunks.length) s.recorderSent = true;
    s.reconnects += 1;
    say(s.paused ? "paused" : "recording");
    warn(word("reconnected", { seconds: kept.toFixed(1) }) + (s.lostNote ? " " + s.lostNote : ""));
    s.lostNote = "";
    report("progress");
    if (s.ending) sendEnd();
  }

  function configRefused(key, failure, values) {
    if (!active()) return;
    if (s.everAccepted) {
      // A reconnection refused: treat as a failed attempt.
      return;
    }
    finish(key, failure, values);
  }

  function socketGone() {
    if (!active()) return;
    if (!s.everAccepted) {
      finish("socket-failed", "socket_failed", {});
      return;
    }
    if (s.endSent) {
      ended(false);
      return;
    }
    // Mid-recording: keep recording into memory, reconnect with a fresh token.
    // A recorder whose stream already went (in part) to a socket is replaced:
    // the next socket needs a whole WebM stream, from its header on. One that
    // sent nothing yet keeps filling the buffer (its header is in there).
    if (s.recorderSent) restartRecorder();
    scheduleReconnect();
  }

  function scheduleReconnect() {
    s.attempts += 1;
    if (s.attempts > MAX_RECONNECTS) {
      finish("reconnect-failed", "reconnect_failed", { n: MAX_RECONNECTS });
      return;
    }
    say("dropped", { n: s.attempts });
    var wait = BACKOFF_MS[Math.min(s.attempts - 1, BACKOFF_MS.length - 1)];
    s.timers.reconnect = setTimeout(function () {
      if (!active()) return;
      freshToken("reconnect").then(connect, function () {
        // The dashboard is unreachable: the token held may still be valid.
        if (Date.now() < s.expiresAt - 5000) connect();
        else scheduleReconnect();
      });
    }, wait);
  }

  // --- audio ------------------------------------------------------------------

  function newRecorder() {
    var recorder = new MediaRecorder(s.stream, { mimeType: MIME, audioBitsPerSecond: 32000 });
    recorder.addEventListener("dataavailable", function (event) {
      if (!s || !event.data || !event.data.size) return;
      chunk(recorder, event.data);
    });
    recorder.addEventListener("stop", function () {
      if (s && s.recorder === recorder && s.ending) sendEnd();
    });
    s.recorder = recorder;
    s.recorderSent = false;
    recorder.start(CHUNK_MS);
    if (s.paused) recorder.pause();
  }

  function restartRecorder() {
    // The socket is gone: the next one needs a WebM stream of its own, from
    // its header on. The old recorder's last slice (under 250 ms) went to no
    // socket.
    var old = s.recorder;
    s.recorder = null;
    if (old && old.state !== "inactive") {
      old.stop();
    }
    newRecorder();
  }

  function chunk(recorder, blob) {
    if (recorder !== s.recorder) return; // a stopped stream's last slice
    if (s.socket && s.accepted && s.socket.readyState === WebSocket.OPEN && !s.buffer.length) {
      s.socket.send(blob);
      s.recorderSent = true;
      return;
    }
    s.buffer.push({ data: blob, ms: CHUNK_MS });
    s.bufferedMs += CHUNK_MS;
    if (s.bufferedMs > BUFFER_SECONDS * 1000) {
      // More than the limit kept: drop it all and start a new stream (a WebM
      // stream cannot lose its middle), so the newest sound is kept.
      s.lostSeconds += s.bufferedMs / 1000;
      s.buffer = [];
      s.bufferedMs = 0;
      s.lostNote = word("lost", { limit: BUFFER_SECONDS, seconds: s.lostSeconds.toFixed(0) });
      warn(s.lostNote);
      report("progress");
      restartRecorder();
    }
  }

  function elapsedTimer() {
    clearInterval(s.timers.elapsed);
    s.timers.elapsed = setInterval(function () {
      if (s) elapsedText.textContent = clock(seconds());
    }, 500);
    // Still here: the record shows the recording as under way only while
    // the page says so (a closed tab goes quiet).
    clearInterval(s.timers.heartbeat);
    s.timers.heartbeat = setInterval(function () {
      if (active()) report("progress");
    }, HEARTBEAT_MS);
  }

  function pause() {
    if (!active() || s.paused || !s.recorder) return;
    s.paused = true;
    s.recorder.pause();
    s.recordedMs += performance.now() - s.runningSince;
    s.runningSince = 0;
    showButtons("paused");
    focusOn(resumeButton);
    say("paused");
  }

  function resume() {
    if (!active() || !s.paused || !s.recorder) return;
    s.paused = false;
    s.recorder.resume();
    s.runningSince = performance.now();
    showButtons("recording");
    focusOn(pauseButton);
    say("recording");
  }

  function end() {
    if (!active() || s.ending) return;
    s.ending = true;
    if (s.runningSince) {
      s.recordedMs += performance.now() - s.runningSince;
      s.runningSince = 0;
    }
    showButtons("ending");
    say("ending");
    // The recorder's last slice comes with its stop; then `end` follows it.
    if (s.recorder && s.recorder.state !== "inactive") s.recorder.stop();
    else sendEnd();
    s.timers.end = setTimeout(function () {
      if (active()) ended(false);
    }, END_TIMEOUT_MS);
  }

  function sendEnd() {
    if (!s.socket || !s.accepted || s.socket.readyState !== WebSocket.OPEN || s.endSent) return;
    s.endSent = true;
    s.socket.send(JSON.stringify({ type: "end" }));
  }

  function ended(confirmed) {
    var time = clock(seconds());
    finish(confirmed ? "ended" : "ended-no-answer", confirmed ? "" : "ended_without_answer", { time: time }, true);
  }

  // Stop everything; keep on the record how it went.
  function finish(key, failure, values, endedNormally) {
    if (!s || s.finished) return;
    s.finished = true;
    var time = clock(seconds());
    values = values || {};
    if (!values.time) values.time = time;
    Object.keys(s.timers).forEach(function (name) {
      clearTimeout(s.timers[name]);
      clearInterval(s.timers[name]);
    });
    if (s.recorder && s.recorder.state !== "inactive") s.recorder.stop();
    if (s.meter) s.meter.stop();
    stopTracks(s.stream);
    if (s.socket && s.socket.readyState <= WebSocket.OPEN) s.socket.close();
    elapsedText.textContent = time;
    var extra = { failure: failure };
    if (KEEP_TRANSCRIPT) extra.transcript = JSON.stringify(kept());
    // Never accepted: nothing was recorded. Accepted, then stopped by a
    // fault: interrupted, with what was recorded until then.
    var event = endedNormally ? "ended" : s.everAccepted ? "interrupted" : "failed";
    report(event, extra);
    if (endedNormally && !failure) {
      say(key, values);
    } else {
      say("");
      warn(word(key, values));
    }
    showButtons("idle");
    focusOn(startButton);
  }

  function kept() {
    var segments = Object.keys(s.segments)
      .map(function (id) {
        return s.segments[id];
      })
      .filter(function (seg) {
        return seg.final;
      });
    var facts = Object.keys(s.factsSeen).map(function (id) {
      return s.factsSeen[id];
    });
    return { segments: segments, facts: facts };
  }

  // --- what Corti says back ---------------------------------------------------

  function showTranscript(items) {
    if (!Array.isArray(items)) return;
    items.forEach(function (item) {
      if (!item || typeof item.transcript !== "string") return;
      var id = String(item.id || "");
      var line = id ? transcript.querySelector('li[data-id="' + CSS.escape(id) + '"]') : null;
      if (!line) {
        line = document.createElement("li");
        line.dataset.id = id;
        var who = document.createElement("span");
        who.className = "speaker";
        var when = document.createElement("span");
        when.className = "when";
        var text = document.createElement("span");
        text.className = "words";
        line.appendChild(who);
        line.appendChild(when);
        line.appendChild(text);
        transcript.appendChild(line);
      }
      var speaker = typeof item.speakerId === "number" && item.speakerId >= 0 ? item.speakerId + 1 : 1;
      var time = item.time || {};
      line.querySelector(".speaker").textContent = word("speaker", { n: speaker });
      line.querySelector(".when").textContent =
        typeof time.start === "number" ? clock(time.start) + (typeof time.end === "number" ? "–" + clock(time.end) : "") : "";
      line.querySelector(".words").textContent = item.transcript;
      line.classList.toggle("interim", !item.final);
      s.segments[id || String(Object.keys(s.segments).length)] = {
        text: item.transcript,
        participant: word("speaker", { n: speaker }),
        start: typeof time.start === "number" ? time.start : null,
        final: !!item.final,
      };
      transcriptEmpty.hidden = true;
      transcript.scrollTop = transcript.scrollHeight;
    });
  }

  function showFacts(items) {
    if (!Array.isArray(items)) return;
    items.forEach(function (item) {
      if (!item || typeof item.text !== "string") return;
      var id = String(item.id || item.text);
      var existing = factsList.querySelector('li[data-id="' + CSS.escape(id) + '"]');
      if (item.isDiscarded) {
        if (existing) existing.remove();
        delete s.factsSeen[id];
        return;
      }
      var line = existing || document.createElement("li");
      line.dataset.id = id;
      line.textContent = item.text;
      if (item.group) {
        var group = document.createElement("span");
        group.className = "muted";
        group.textContent = " (" + item.group + ")";
        line.appendChild(group);
      }
      if (!existing) factsList.appendChild(line);
      s.factsSeen[id] = { text: item.text, group: item.group || "" };
    });
  }

  // --- wiring -----------------------------------------------------------------

  if (!supported()) {
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

  window.addEventListener("beforeunload", function (event) {
    if (!active()) return;
    event.preventDefault();
    event.returnValue = word("leave");
    return event.returnValue;
  });
  // A tab closed (or navigated away) mid-recording: say so on the record.
  window.addEventListener("pagehide", function () {
    if (!active() || !s.reportUrl) return;
    var data = new FormData();
    data.append("csrfmiddlewaretoken", form.elements.csrfmiddlewaretoken.value);
    data.append("event", "interrupted");
    data.append("failure", "page_closed");
    data.append("seconds", seconds().toFixed(1));
    data.append("lost", s.lostSeconds.toFixed(1));
    data.append("reconnects", String(s.reconnects));
    navigator.sendBeacon(s.reportUrl, data);
  });

  // "Copy stream URL with token": copy it straight away (the press still
  // counts as the user's gesture); the Copy button stays for a second try.
  document.addEventListener("htmx:afterSwap", function (event) {
    if (!event.detail.target || event.detail.target.id !== "stream-url-slot") return;
    var button = event.detail.target.querySelector("button[data-copy-now]");
    if (button) button.click();
  });
})();
