// What each error kind (DOMAIN.md 7, services/gateway/errors.py) means for the user,
// and what they can do about it. The server's own message is shown beside it: it
// names the strike, the field or the broker's reason.

export const ERROR_TEXT = {
  INSUFFICIENT_BUYING_POWER: ['Not enough buying power for this trade.', 'Reduce the size or free up buying power.'],
  STRIKE_NOT_FOUND: ['One or more strikes are no longer available.', 'Generate a new suggestion.'],
  MARKET_CLOSED: ['The market is closed.', 'Orders can be placed during regular market hours.'],
  API_ERROR: ['The broker answered with an error.', 'Try again in a moment.'],
  AUTH_FAILED: ['The broker refused the stored credentials.', 'Re-link the broker account in Settings.'],
  TRADING_SUSPENDED: ['Trading is suspended.', 'New orders resume once the broker is reachable again.'],
  RISK_BUDGET_EXCEEDED: ['This trade exceeds your remaining risk budget.', 'Wait for positions to close or choose a more conservative trade.'],
  CONFLICTING_POSITION: ['This trade conflicts with an open position.', 'A short strike would meet an existing long strike (or the reverse).'],
  NO_EXPIRATION: ['No expiration between 30 and 50 days is available.', 'Try again later.'],
  POSITION_LIMIT: ['The limit of 30 open positions is reached.', 'Close a position first.'],
  RISK_WARNING_UNCONFIRMED: ['This trade is above your risk warning level and was not confirmed.', 'Approve again and confirm the warning.'],
  RATE_LIMITED: ['Too many requests.', 'Wait a moment and try again.'],
  BROKER_UNAVAILABLE: ['The broker cannot be reached.', 'Try again in a moment.'],
  BROKER_TIMEOUT: ['The broker did not answer in time.', 'Check the order status before trying again.'],
  ORDER_REJECTED: ['The broker rejected the order.', ''],
  VALIDATION_ERROR: ['Some input is not valid.', ''],
  NOT_FOUND: ['Not found.', 'It may have expired or belong to another account.'],
  NO_CREDIT: ['The spreads offer no credit at current prices.', 'Try again later.'],
  INVALID_STATE: ['This is not possible in the current state.', 'Refresh to see the latest state.'],
  MARKET_DATA_STALE: ['Market data is not fresh.', 'Wait for quotes to resume and try again.'],
  SERVICE_UNAVAILABLE: ['A service is unavailable.', 'Try again in a moment.'],
  INTERNAL_ERROR: ['Something went wrong on the server.', 'Try again; if it persists, check the logs.'],
};

/** {title, hint, detail} for an ApiError or a ws ``error`` message. */
export function describe(error) {
  const kind = error.kind || 'INTERNAL_ERROR';
  const [title, hint] = ERROR_TEXT[kind] || ERROR_TEXT.INTERNAL_ERROR;
  const detail = error.message && error.message !== title ? error.message : '';
  return { kind, title, hint, detail, field: error.field || null };
}
