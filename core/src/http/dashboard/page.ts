export const DASHBOARD_HTML = '<html></html>';
