// Boots the app: the auth screen until someone signs in, then the chat.
// Routes: /, /c/<conversation id> and /join/<invitation token> (the server answers all with index.html).

import "./style.css";
import type { User } from "../../gen/chat/v1/auth_pb.js";
import { Api } from "./api.ts";
import { Chat } from "./chat.ts";
import { deviceId, idleMs, initialTransport, savedWorkspace, saveWorkspace } from "./settings.ts";
import { renderAuth } from "./ui/auth-view.ts";
import { ChatView } from "./ui/chat-view.ts";

// Same origin by default; an app served elsewhere is built with VITE_API_BASE_URL
// (and the server lists that origin in CORS_ORIGINS).
const baseUrl = import.meta.env.VITE_API_BASE_URL || location.origin;
const root = document.getElementById("app")!;

let chat: Chat | null = null;
let view: ChatView | null = null;

const api = new Api({
  baseUrl,
  transport: initialTransport(),
  onSessionEnded: () => showAuth("Your session ended. Please log in again."),
});

function routeId(): string | null {
  const m = /^\/c\/([0-9a-fA-F-]{36})\/?$/.exec(location.pathname);
  return m ? m[1]! : null;
}

/** An invitation link: /join/<token> (docs/WEB.md "Workspaces"). */
function routeJoin(): string | null {
  const m = /^\/join\/([A-Za-z0-9_-]{1,128})\/?$/.exec(location.pathname);
  return m ? m[1]! : null;
}

function navigate(id: string | null): void {
  const path = id ? `/c/${id}` : "/";
  if (location.pathname !== path) history.pushState(null, "", `${path}${location.search}`);
}

function showAuth(notice?: string): void {
  view?.destroy();
  chat?.stop();
  view = null;
  chat = null;
  document.title = "Chat";
  if (!notice && routeJoin()) notice = "Log in or create an account to join the workspace you were invited to.";
  renderAuth(root, { api, notice, onSignedIn: (user) => void signedIn(user) });
}

async function signedIn(user: User): Promise<void> {
  chat = new Chat(api, user, deviceId(), idleMs(), { preferred: savedWorkspace(), onChange: saveWorkspace });
  view = new ChatView(root, chat, api, {
    onLogout: () => void api.logout().finally(() => showAuth()),
    onNavigate: navigate,
  });
  const target = routeId();
  const invite = routeJoin();
  await chat.start();
  if (invite && view) {
    // The token is used once: the address bar goes back to the app.
    history.replaceState(null, "", `/${location.search}`);
    await view.joinInvite(invite);
  } else if (target && view) await view.open(target);
}

window.addEventListener("popstate", () => {
  if (!chat || !view) return;
  const id = routeId();
  if (id) void view.open(id);
  else chat.closeConversation();
});

// A reload resumes the session from the refresh cookie when there is one.
api.resume().then(
  (user) => (user ? signedIn(user) : showAuth()),
  () => showAuth("Could not reach the server to restore your session. Please log in."),
);
