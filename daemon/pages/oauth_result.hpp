#pragma once
// The page the OAuth callback lands on (SPEC §9): it states the outcome and announces it to the page
// that started the flow — {result, connectionId, message}, never a token or code — on
// BroadcastChannel("alumia-connector-oauth"), the localStorage key `alumia:connector-oauth` and
// window.opener.postMessage (its own origin only), then closes itself. Readable without JavaScript.
#include <alumia/net/http.hpp>
#include <alumia/oauth/oauth.hpp>

namespace alumia::daemon::pages {

http::Response oauth_result_page(const oauth::CallbackOutcome& outcome, int status);

}  // namespace alumia::daemon::pages
