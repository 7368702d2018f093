// PRIMA's GraphiQL page: GraphiQL 3 over /graphql and, for subscriptions, /graphql/ws
// (graphql-transport-ws). Every asset is served by the API itself; nothing is loaded from
// elsewhere. The headers editor starts with an Authorization template: log in with the
// `login` mutation, paste the token there, and it goes with every request and, as the
// `connection_init` payload, with every subscription.
(function () {
  var root = document.getElementById('graphiql');
  var endpoint = root.dataset.endpoint;
  var subscriptions = root.dataset.subscriptions;
  function absolute(path, websocket) {
    var url = new URL(path, window.location.href);
    if (websocket) url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    return url.toString();
  }
  var fetcher = GraphiQL.createFetcher({
    url: absolute(endpoint, false),
    subscriptionUrl: absolute(subscriptions, true),
  });
  // A query in the address bar (`/graphql?query=...`, as a link to the API would carry)
  // opens in the editor.
  var params = new URLSearchParams(window.location.search);
  var props = {
    fetcher: fetcher,
    defaultHeaders: root.dataset.headers,
    defaultQuery: root.dataset.query,
    defaultEditorToolsVisibility: 'headers',
  };
  if (params.get('query')) props.query = params.get('query');
  if (params.get('variables')) props.variables = params.get('variables');
  ReactDOM.createRoot(root).render(React.createElement(GraphiQL, props));
})();
