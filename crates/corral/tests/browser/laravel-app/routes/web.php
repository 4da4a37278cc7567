<?php
use App\Http\Controllers\PageController;
use Illuminate\Http\Request;
use Illuminate\Support\Facades\Route;
use Illuminate\Support\Facades\Storage;

Route::get('/', function () {
    return view('welcome', ['name' => 'corral', 'php' => PHP_VERSION, 'laravel' => app()->version()]);
});

Route::get('/notes', function () {
    $disk = Storage::disk('local');
    return view('notes', ['saved' => $disk->exists('notes/latest.txt') ? $disk->get('notes/latest.txt') : null]);
});

Route::post('/notes', function (Request $request) {
    Storage::disk('local')->put('notes/latest.txt', (string) $request->input('text'));
    return redirect('/notes');
});

// bench/run.sh's page: a controller behind Laravel's stock middleware.
Route::get('/page', [PageController::class, 'show'])->middleware('stock-web')->name('page');
