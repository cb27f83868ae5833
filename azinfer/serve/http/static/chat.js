// The chat page: talks to this server's OpenAI-compatible API with the key kept for this tab.
"use strict";

const KEY_ITEM = "azinfer-api-key";
const $ = (id) => document.getElementById(id);

const state = {
  key: sessionStorage.getItem(KEY_ITEM),
  model: null,
  history: [], // {role, content} of the finished turns
  controller: null, // aborts the reply being streamed
};

function headers(json) {
  const result = json ? { "Content-Type": "application/json" } : {};
  if (state.key) result.Authorization = `Bearer ${state.key}`;
  return result;
}

function showError(message) {
  $("error").textContent = message || "";
  $("error").hidden = !message;
}

function setReady(ready) {
  $("prompt").disabled = !ready;
  $("send").disabled = !ready || state.controller !== null;
}

function askForKey(message) {
  state.key = null;
  sessionStorage.removeItem(KEY_ITEM);
  setReady(false);
  $("key-error").textContent = message || "";
  $("key-error").hidden = !message;
  $("key-panel").hidden = false;
  $("key").focus();
}

async function errorMessage(response) {
  try {
    const body = await response.json();
    if (body && body.error && body.error.message) return body.error.message;
  } catch (_) { /* not JSON */ }
  return `the server answered ${response.status}`;
}

// The base model first, then its adapters ("adapter (on base)"); the choice is kept if still served.
function showModels(models) {
  const options = models.map((model) => {
    const option = document.createElement("option");
    option.value = model.id;
    option.textContent = model.parent ? `${model.id} (adapter on ${model.parent})` : model.id;
    return option;
  });
  $("model").replaceChildren(...options);
  if (!models.some((model) => model.id === state.model)) state.model = models[0].id;
  $("model").value = state.model;
}

// Check the key (if any) by listing the models; ask for a key when refused.
async function connect(refusedMessage) {
  let response;
  try {
    response = await fetch("/v1/models", { headers: headers(false) });
  } catch (error) {
    showError(`Cannot reach the server: ${error.message}`);
    return;
  }
  if (response.status === 401) {
    askForKey(refusedMessage);
    return;
  }
  if (!response.ok) {
    showError(await errorMessage(response));
    return;
  }
  const body = await response.json();
  showModels(body.data);
  if (state.key) sessionStorage.setItem(KEY_ITEM, state.key);
  $("key-panel").hidden = true;
  showError("");
  setReady(true);
  $("prompt").focus();
}

function addMessage(role, text) {
  const element = document.createElement("div");
  element.className = `msg ${role}`;
  element.textContent = text;
  $("log").appendChild(element);
  element.scrollIntoView({ block: "end" });
  return element;
}

function numberSetting(id) {
  const value = Number($(id).value);
  return Number.isFinite(value) ? value : undefined;
}

// Yield the JSON objects of a server-sent event stream as they arrive.
async function* events(response) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, { stream: true });
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const event = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      for (const line of event.split("\n")) {
        if (!line.startsWith("data: ")) continue;
        const data = line.slice(6);
        if (data === "[DONE]") return;
        yield JSON.parse(data);
      }
    }
  }
}

async function send(text) {
  const turn = { role: "user", content: text };
  const userElement = addMessage("user", text);
  const replyElement = addMessage("assistant", "");
  replyElement.classList.add("streaming");
  state.controller = new AbortController();
  setReady(true);
  $("stop").hidden = false;
  showError("");
  let reply = "";
  let failed = null;
  try {
    const response = await fetch("/v1/chat/completions", {
      method: "POST",
      headers: headers(true),
      signal: state.controller.signal,
      body: JSON.stringify({
        model: state.model,
        messages: [...state.history, turn],
        stream: true,
        max_tokens: numberSetting("max-tokens"),
        temperature: numberSetting("temperature"),
        top_p: numberSetting("top-p"),
      }),
    });
    if (response.status === 401) {
      failed = "key";
    } else if (!response.ok) {
      failed = await errorMessage(response);
    } else {
      for await (const chunk of events(response)) {
        if (chunk.error) throw new Error(chunk.error.message);
        const delta = chunk.choices && chunk.choices[0] && chunk.choices[0].delta;
        if (delta && delta.content) {
          reply += delta.content;
          replyElement.textContent = reply;
          replyElement.scrollIntoView({ block: "end" });
        }
      }
    }
  } catch (error) {
    if (error.name !== "AbortError") failed = error.message;
  } finally {
    state.controller = null;
    $("stop").hidden = true;
    replyElement.classList.remove("streaming");
  }
  if (failed !== null && !reply) {
    // Nothing came back: take the turn off the page and give the text back to edit.
    userElement.remove();
    replyElement.remove();
    $("prompt").value = text;
    if (failed === "key") askForKey("The server refused the key; enter it again.");
    else showError(failed);
    setReady(state.model !== null && $("key-panel").hidden);
    return;
  }
  if (failed !== null) showError(failed);
  state.history.push(turn, { role: "assistant", content: reply });
  setReady(true);
}

$("key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  state.key = $("key").value.trim();
  connect("That key was refused; check it and try again.");
});

$("composer").addEventListener("submit", (event) => {
  event.preventDefault();
  const text = $("prompt").value.trim();
  if (!text || state.controller !== null || $("prompt").disabled) return;
  $("prompt").value = "";
  send(text);
});

$("prompt").addEventListener("keydown", (event) => {
  if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
    event.preventDefault();
    $("composer").requestSubmit();
  }
});

$("model").addEventListener("change", () => {
  state.model = $("model").value;
});

$("stop").addEventListener("click", () => {
  if (state.controller) state.controller.abort();
});

$("new-chat").addEventListener("click", () => {
  if (state.controller) state.controller.abort();
  state.history = [];
  $("log").replaceChildren();
  showError("");
});

connect("");
