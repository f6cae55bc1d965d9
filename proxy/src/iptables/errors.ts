// Stable error codes of the traffic-redirection setup (`tsmesh iptables`).
import { MESH_ERRORS } from '@tsmesh/common';

export const IPTABLES_ERRORS = {
  /** A flag or flag value was rejected; nothing was changed. */
  BAD_FLAG: MESH_ERRORS.BAD_FLAG,
  /** iptables-save / iptables-restore (or the ip6tables pair) is not installed. */
  TOOL_MISSING: 'TSMESH_ERR_IPTABLES_TOOL_MISSING',
  /** The current nat table could not be read. */
  READ_STATE: 'TSMESH_ERR_IPTABLES_READ_STATE',
  /** iptables-restore refused the generated ruleset. */
  RESTORE: 'TSMESH_ERR_IPTABLES_RESTORE',
  /** The IPv6 inbound source address (::6) could not be added to or removed from lo. */
  ADDRESS: 'TSMESH_ERR_IPTABLES_ADDRESS',
} as const;
