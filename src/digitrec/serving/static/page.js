// The drawing page: strokes on a canvas are sent as a PNG to v1/predict, the answer shown live.
"use strict";

(function () {
  const pad = document.getElementById("pad");
  const context = pad.getContext("2d");
  const label = document.getElementById("label");
  const confidence = document.getElementById("confidence");
  const status = document.getElementById("status");
  const bars = document.getElementById("bars");
  const upload = document.getElementById("upload");
  const keyRow = document.getElementById("key-row");
  const keyInput = document.getElementById("api-key");
  const LIVE_INTERVAL_MS = 250;

  let version = 0;        // bumped by every change to what is shown
  let drawing = null;     // the pointer id drawing now, and where it was
  let lastSent = 0;
  let lastRequest = null; // what to resend once an API key is given

  function blank() {
    context.fillStyle = "#fff";
    context.fillRect(0, 0, pad.width, pad.height);
  }

  function changed() {
    version += 1;
    pad.dataset.version = String(version);
    return version;
  }

  function showError(message) {
    status.textContent = message;
    status.classList.add("error");
  }

  function showAnswer(answer, forVersion) {
    if (forVersion !== version) {
      return; // a newer drawing is on its way
    }
    status.textContent = "";
    status.classList.remove("error");
    label.textContent = answer.label;
    label.dataset.version = String(forVersion);
    confidence.textContent = `(probability ${answer.confidence.toFixed(3)})`;
    bars.replaceChildren();
    answer.probabilities.forEach((probability, index) => {
      const item = document.createElement("li");
      item.className = index === answer.class_index ? "top" : "";
      const name = document.createElement("span");
      name.className = "name";
      name.textContent = String(index);
      const track = document.createElement("span");
      track.className = "track";
      const fill = document.createElement("span");
      fill.className = "fill";
      fill.style.display = "block";
      fill.style.width = `${(probability * 100).toFixed(1)}%`;
      track.append(fill);
      const value = document.createElement("span");
      value.className = "value";
      value.textContent = probability.toFixed(2);
      item.append(name, track, value);
      bars.append(item);
    });
  }

  async function send(file, name, forVersion) {
    lastRequest = { file, name, forVersion };
    const body = new FormData();
    body.append("file", file, name);
    const headers = {};
    if (keyInput.value) {
      headers["Authorization"] = `Bearer ${keyInput.value}`;
    }
    let response;
    try {
      response = await fetch("v1/predict", { method: "POST", body, headers });
    } catch (error) {
      showError(`The server cannot be reached: ${error}`);
      return;
    }
    const reply = await response.json().catch(() => null);
    if (response.status === 401) {
      keyRow.hidden = false;
      showError("This server needs an API key: enter it above.");
      return;
    }
    if (!response.ok || reply === null) {
      const message = reply && reply.error ? reply.error.message : response.statusText;
      if (forVersion === version) {
        label.textContent = "?";
        label.dataset.version = String(forVersion);
        showError(message);
      }
      return;
    }
    showAnswer(reply.predictions[0], forVersion);
  }

  function sendDrawing() {
    const forVersion = changed();
    lastSent = performance.now();
    pad.toBlob((blob) => send(blob, "drawing.png", forVersion), "image/png");
  }

  function point(event) {
    const box = pad.getBoundingClientRect();
    return [
      ((event.clientX - box.left) * pad.width) / box.width,
      ((event.clientY - box.top) * pad.height) / box.height,
    ];
  }

  function strokeTo(event) {
    const moves = event.getCoalescedEvents ? event.getCoalescedEvents() : [];
    context.beginPath();
    context.moveTo(drawing.x, drawing.y);
    for (const move of moves.length ? moves : [event]) {
      [drawing.x, drawing.y] = point(move);
      context.lineTo(drawing.x, drawing.y);
    }
    context.stroke();
  }

  pad.addEventListener("pointerdown", (event) => {
    event.preventDefault();
    pad.setPointerCapture(event.pointerId);
    const [x, y] = point(event);
    drawing = { id: event.pointerId, x, y };
    context.strokeStyle = "#000";
    context.fillStyle = "#000";
    context.lineWidth = 18;
    context.lineCap = "round";
    context.lineJoin = "round";
    context.beginPath();
    context.arc(x, y, context.lineWidth / 2, 0, 2 * Math.PI);
    context.fill();
  });

  pad.addEventListener("pointermove", (event) => {
    if (drawing === null || event.pointerId !== drawing.id) {
      return;
    }
    strokeTo(event);
    if (performance.now() - lastSent > LIVE_INTERVAL_MS) {
      sendDrawing();
    }
  });

  function endStroke(event) {
    if (drawing === null || event.pointerId !== drawing.id) {
      return;
    }
    drawing = null;
    sendDrawing();
  }
  pad.addEventListener("pointerup", endStroke);
  pad.addEventListener("pointercancel", endStroke);

  document.getElementById("clear").addEventListener("click", () => {
    blank();
    const forVersion = changed();
    label.textContent = "–";
    label.dataset.version = String(forVersion);
    confidence.textContent = "";
    status.textContent = "";
    status.classList.remove("error");
    bars.replaceChildren();
  });

  upload.addEventListener("change", async () => {
    const file = upload.files[0];
    if (!file) {
      return;
    }
    blank();
    try {
      const picture = await createImageBitmap(file);
      const scale = Math.min(pad.width / picture.width, pad.height / picture.height);
      const width = picture.width * scale;
      const height = picture.height * scale;
      context.drawImage(picture, (pad.width - width) / 2, (pad.height - height) / 2, width, height);
    } catch (error) {
      // Not every file the server reads (.npy, DICOM) can be shown by a browser.
    }
    send(file, file.name, changed());
    upload.value = "";
  });

  keyInput.addEventListener("change", () => {
    if (lastRequest !== null) {
      send(lastRequest.file, lastRequest.name, lastRequest.forVersion);
    }
  });

  blank();
})();
