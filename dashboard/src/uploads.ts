/**
 * Browser uploads as a creator-upload page does them: a one-time direct-upload URL minted per file
 * through the account API, then the file POSTed straight to that URL (XMLHttpRequest, for progress).
 */
import { type AccountApi, ApiError, type ImageRecord, readEnvelope } from './api';

export interface UploadProgress {
  loaded: number;
  total: number;
}

function postFile(url: string, file: File, onProgress: (progress: UploadProgress) => void): Promise<ImageRecord> {
  return new Promise((resolve, reject) => {
    const request = new XMLHttpRequest();
    request.open('POST', url);
    request.upload.addEventListener('progress', (event) => onProgress({ loaded: event.loaded, total: event.total || file.size }));
    request.addEventListener('load', () => {
      const response = new Response(request.responseText, { status: request.status, headers: { 'content-type': 'application/json' } });
      readEnvelope<ImageRecord>(response).then((envelope) => resolve(envelope.result), reject);
    });
    request.addEventListener('error', () =>
      reject(new ApiError('The upload was cut off before the server answered (a file over the size limit is refused this way)', undefined, 0)),
    );
    const form = new FormData();
    form.append('file', file, file.name);
    request.send(form);
  });
}

export async function uploadFile(account: AccountApi, file: File, onProgress: (progress: UploadProgress) => void): Promise<ImageRecord> {
  const { uploadURL } = await account.directUpload();
  return postFile(uploadURL, file, onProgress);
}
