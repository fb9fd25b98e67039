/** Name of the HttpOnly cookie the Temporal Web UI sends to the codec endpoint. */
export const CODEC_COOKIE = 'warden_codec';
