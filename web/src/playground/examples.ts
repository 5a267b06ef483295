// What a new playground shows: the headers pane explains where a token comes from, and
// the tabs hold a merchandiser query and the alert subscription to try.

export const defaultHeaders = `// Merchandiser fields need a token.
// \`make run\` prints one; or run
//   bin/storefront token --role merchandiser
// Uncomment the line below and paste the
// token after "Bearer ". Each tab has its
// own headers; subscriptions send them too.
{
  // "Authorization": "Bearer <token>"
}
`;

export const defaultTabs = [
  {
    query: `# Products with their stock per warehouse (merchandisers only: see the headers pane).
query Stock {
  products(first: 5, sort: NAME_ASC) {
    totalCount
    edges {
      node {
        sku
        name
        price { amount currency }
        inventory { warehouse { code } available lowStockThreshold }
      }
    }
  }
}
`,
  },
  {
    query: `# Inventory alerts as stock changes cross a threshold. Run it, then change some stock
# (setStock or adjustStock in another tab, or the dashboard at /dashboard).
subscription Alerts {
  inventoryAlerts {
    id
    kind
    available
    at
    lagged
    product { sku name }
    warehouse { code }
  }
}
`,
  },
];
