/*
 * Bootstrap of the taskpulse playground: GraphiQL over HTTP POST for queries
 * and mutations, graphql-transport-ws for subscriptions, both authenticated
 * with the token typed into the bar at the top.
 *
 * Kept in an asset file (not inline) so the page's Content-Security-Policy can
 * allow scripts from 'self' only. Uses no URL of its own: the endpoint comes
 * from the page's taskpulse-endpoint meta tag, resolved against location.
 */
(function () {
  'use strict';

  var STORAGE_KEY = 'taskpulse.playground.token';
  var CLOSE_FORBIDDEN = 4403;

  var DEFAULT_QUERY = [
    '# Welcome to the taskpulse playground.',
    '#',
    '# 1. Paste a token in the bar above. Print one',
    '#    with: taskpulse token alice',
    '#    (or open a link ending in #token=<jwt>).',
    '# 2. Run this subscription. It stays open; each',
    '#    event replaces the result on the right.',
    '# 3. Open a second tab (+ at the top right) and',
    '#    run a mutation there, for example:',
    '#',
    '#   mutation {',
    '#     createTask(input: { title: "Ship it" }) {',
    '#       id title status',
    '#     }',
    '#   }',
    '',
    'subscription {',
    '  taskUpdates {',
    '    type',
    '    cursor',
    '    timestamp',
    '    task { id title status assignedTo }',
    '  }',
    '}',
    ''
  ].join('\n');

  /* Endpoints: the meta tag holds what the server was configured with
   * (usually a path such as /graphql); the WebSocket URL is the same URL with
   * the ws/wss scheme matching http/https. */
  var meta = document.querySelector('meta[name="taskpulse-endpoint"]');
  var httpURL = new URL((meta && meta.content) || '/graphql', location.href);
  var wsURL = new URL(httpURL.href);
  wsURL.protocol = httpURL.protocol === 'https:' ? 'wss:' : 'ws:';

  /* GraphiQL's dialogs add <style> elements at run time (react-remove-scroll,
   * through get-nonce, which reads this global). The page's CSP admits only
   * styles carrying the per-response nonce, so 'unsafe-inline' is not needed. */
  var nonceMeta = document.querySelector('meta[name="taskpulse-style-nonce"]');
  if (nonceMeta && nonceMeta.content) {
    window.__webpack_nonce__ = nonceMeta.content;
  }

  var tokenInput = document.getElementById('tp-token');
  var clearButton = document.getElementById('tp-clear');
  var statusEl = document.getElementById('tp-status');

  /* localStorage may be unavailable (private mode, disabled storage): the
   * token then lives for this page only. */
  function loadStored() {
    try {
      return window.localStorage.getItem(STORAGE_KEY) || '';
    } catch (e) {
      return '';
    }
  }
  function store(value) {
    try {
      if (value) {
        window.localStorage.setItem(STORAGE_KEY, value);
      } else {
        window.localStorage.removeItem(STORAGE_KEY);
      }
    } catch (e) {
      /* not persisted; still used for this page */
    }
  }

  /* #token=<jwt> lets a printed link carry the token. It is moved into
   * storage and removed from the address bar so it is not left on screen or
   * in the history. */
  function takeTokenFromFragment() {
    var params = new URLSearchParams(location.hash.replace(/^#/, ''));
    var value = params.get('token');
    if (value === null) {
      return null;
    }
    history.replaceState(null, '', location.pathname + location.search);
    return value.trim();
  }

  var token = '';
  var socketState = { text: 'socket idle', state: '' };

  function decodeClaims(jwt) {
    var parts = jwt.split('.');
    if (parts.length !== 3) {
      return null;
    }
    try {
      var b64 = parts[1].replace(/-/g, '+').replace(/_/g, '/');
      while (b64.length % 4) {
        b64 += '=';
      }
      var claims = JSON.parse(atob(b64));
      return claims && typeof claims === 'object' ? claims : null;
    } catch (e) {
      return null;
    }
  }

  /* What the bar says about the token. Only a hint: the server verifies it. */
  function describeToken() {
    if (!token) {
      return { text: 'no token: paste one to load the schema and run operations', state: 'error' };
    }
    var claims = decodeClaims(token);
    if (!claims) {
      return { text: 'this does not look like a JWT', state: 'error' };
    }
    var who = typeof claims.sub === 'string' ? claims.sub : '(no sub)';
    if (typeof claims.exp !== 'number') {
      return { text: who, state: '' };
    }
    var minutes = Math.round((claims.exp * 1000 - Date.now()) / 60000);
    if (minutes <= 0) {
      return { text: who + ' \u00b7 token expired', state: 'error' };
    }
    var left = minutes + ' min';
    if (minutes >= 2 * 24 * 60) {
      left = Math.round(minutes / (24 * 60)) + ' days';
    } else if (minutes >= 120) {
      left = Math.round(minutes / 60) + ' h';
    }
    return { text: who + ' \u00b7 expires in ' + left, state: 'ok' };
  }

  function renderStatus() {
    var t = describeToken();
    statusEl.textContent = t.text + ' \u00b7 ' + socketState.text;
    statusEl.title = statusEl.textContent;
    var state = t.state === 'error' || socketState.state === 'error' ? 'error' : t.state;
    statusEl.setAttribute('data-state', state);
  }

  function setSocketState(text, state) {
    socketState = { text: text, state: state || '' };
    renderStatus();
  }

  function isCloseEvent(e) {
    return !!e && typeof e === 'object' && 'code' in e && 'reason' in e;
  }

  function wait(ms) {
    return new Promise(function (resolve) {
      setTimeout(resolve, ms);
    });
  }

  /* One graphql-ws client for the page. connectionParams is a function so
   * the token is read when a socket connects, not when the client is made:
   * changing the token terminates the socket and the retry reconnects with
   * the new one, resubscribing what is running. 4403 (token missing, bad or
   * expired) is not retried: a new token is needed first. */
  var wsClient = graphqlWs.createClient({
    url: wsURL.href,
    lazy: true,
    connectionParams: function () {
      return token ? { token: token } : {};
    },
    retryAttempts: 5,
    retryWait: function (retries) {
      return wait(Math.min(250 * Math.pow(2, retries), 8000));
    },
    shouldRetry: function (e) {
      return isCloseEvent(e) && e.code !== CLOSE_FORBIDDEN;
    },
    on: {
      connecting: function () {
        setSocketState('socket connecting');
      },
      connected: function () {
        setSocketState('socket connected', 'ok');
      },
      closed: function (e) {
        if (isCloseEvent(e) && e.code === CLOSE_FORBIDDEN) {
          setSocketState('socket closed 4403 (token rejected)', 'error');
        } else if (isCloseEvent(e) && e.code !== 1000 && e.code !== 4499) {
          setSocketState('socket closed ' + e.code + (e.reason ? ' ' + e.reason : ''), 'error');
        } else {
          setSocketState('socket idle');
        }
      }
    }
  });

  /* What GraphiQL shows when a subscription fails: a close event, GraphQL
   * errors from the server, or a connection that never opened. */
  function toGraphQLErrors(err) {
    if (Array.isArray(err)) {
      return err;
    }
    if (isCloseEvent(err)) {
      var hint = err.code === CLOSE_FORBIDDEN ? ' (paste a valid token in the bar above)' : '';
      return [{ message: 'WebSocket closed ' + err.code + (err.reason ? ': ' + err.reason : '') + hint }];
    }
    if (err instanceof Error) {
      return [{ message: err.message }];
    }
    return [{ message: 'WebSocket error: could not reach ' + wsURL.href }];
  }

  /* GraphiQL's toolkit turns a subscription error into iterator.throw() and
   * drops the returned promise, so every refused or dropped subscription
   * would also raise an unhandled rejection. Handing it the error as a
   * result and completing shows the same message without that. */
  var subscriptions = {
    subscribe: function (payload, sink) {
      return wsClient.subscribe(payload, {
        next: function (value) {
          sink.next(value);
        },
        complete: function () {
          sink.complete();
        },
        error: function (err) {
          sink.next({ errors: toGraphQLErrors(err) });
          sink.complete();
        }
      });
    }
  };

  /* HTTP requests carry the token unless the GraphiQL headers editor already
   * sets Authorization (an explicit header wins). */
  function authFetch(input, init) {
    var options = Object.assign({}, init);
    var headers = new Headers(options.headers || {});
    if (token && !headers.has('Authorization')) {
      headers.set('Authorization', 'Bearer ' + token);
    }
    options.headers = headers;
    return window.fetch(input, options);
  }

  var root = ReactDOM.createRoot(document.getElementById('graphiql'));

  /* A new fetcher object makes GraphiQL fetch the schema again, which it
   * must after the identity changed. */
  function renderGraphiQL() {
    var fetcher = GraphiQL.createFetcher({
      url: httpURL.href,
      wsClient: subscriptions,
      fetch: authFetch
    });
    root.render(
      React.createElement(GraphiQL, {
        fetcher: fetcher,
        defaultQuery: DEFAULT_QUERY,
        shouldPersistHeaders: false,
        /* The server answers 401 to everything sent without a token, so
         * there is no schema to fetch until one is set (null: GraphiQL does
         * not ask; undefined: it introspects with the token). */
        schema: token ? undefined : null
      })
    );
  }

  function useToken(value) {
    value = (value || '').trim();
    if (tokenInput.value !== value) {
      tokenInput.value = value;
    }
    if (value === token) {
      return;
    }
    token = value;
    store(token);
    renderStatus();
    wsClient.terminate();
    renderGraphiQL();
  }

  var pending = 0;
  tokenInput.addEventListener('input', function () {
    clearTimeout(pending);
    pending = setTimeout(function () {
      useToken(tokenInput.value);
    }, 400);
  });
  tokenInput.addEventListener('change', function () {
    clearTimeout(pending);
    useToken(tokenInput.value);
  });
  clearButton.addEventListener('click', function () {
    clearTimeout(pending);
    useToken('');
    tokenInput.focus();
  });
  window.addEventListener('hashchange', function () {
    var fromFragment = takeTokenFromFragment();
    if (fromFragment !== null) {
      useToken(fromFragment);
    }
  });
  window.addEventListener('storage', function (e) {
    if (e.key === STORAGE_KEY) {
      useToken(e.newValue || '');
    }
  });
  /* Keep "expires in" current. */
  setInterval(renderStatus, 30000);

  var initial = takeTokenFromFragment();
  token = initial !== null ? initial : loadStored();
  if (initial !== null) {
    store(token);
  }
  tokenInput.value = token;
  renderStatus();
  renderGraphiQL();
})();
